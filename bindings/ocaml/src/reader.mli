(** The reader of a channel.

    A channel has one reader at a time; it sees every writer's frames in the
    order they were claimed, each writer's frames in the order written.  If
    the reader process dies, the next reader to open the channel takes over
    from where it stopped.  A reader is used by one thread at a time (a
    second concurrent call fails with [Handle_busy]).

    {[
      let r = Reader.attach "prices" |> Error.get_exn in
      match Reader.read ~timeout_ns:1_000_000_000 r with
      | Ok { Reader.type_id; payload } -> handle type_id payload
      | Error { Error.code = Error.Empty; _ } -> ()  (* nothing within 1 s *)
      | Error e -> failwith (Error.to_string e)
    ]} *)

type t
(** An open reader. *)

type frame = {
  type_id : int;  (** The frame's type id (1 to 65535). *)
  payload : string;  (** A copy of the frame's payload. *)
}
(** A frame taken from the ring. *)

val create :
  ?capacity:int ->
  ?max_payload:int ->
  ?mode:int ->
  ?schema_digest:string ->
  string ->
  (t, Error.t) result
(** [create name] makes the channel [name] and becomes its reader; the
    arguments are those of {!Writer.create}. *)

val attach : ?schema_digest:string -> string -> (t, Error.t) result
(** [attach name] becomes the reader of the existing channel [name];
    [Reader_busy] if a live reader holds it, [Schema_mismatch] if
    [schema_digest] is given and differs from the channel's. *)

val create_or_attach :
  ?capacity:int ->
  ?max_payload:int ->
  ?mode:int ->
  ?schema_digest:string ->
  string ->
  (t, Error.t) result
(** [create_or_attach name] attaches to [name], creating it first if it does
    not exist. *)

val read : ?timeout_ns:int -> t -> (frame, Error.t) result
(** [read r] takes the next frame, waiting [timeout_ns] nanoseconds at most
    (default -1: for ever; 0: not at all) and then failing with [Empty].
    While it waits the OCaml runtime lock is released, so other threads
    run.  A signal ends the wait with [Interrupted] (OCaml signal handlers
    then run); call again to go on waiting. *)

val read_exn : ?timeout_ns:int -> t -> frame
(** [read_exn] is {!read}, raising {!Error.Mycelium_error} on failure. *)

val try_read : t -> (frame, Error.t) result
(** [try_read r] is [read ~timeout_ns:0 r]. *)

val read_batch : ?timeout_ns:int -> ?max_frames:int -> t -> (frame list, Error.t) result
(** [read_batch r] takes up to [max_frames] (default 64) frames at once,
    waiting up to [timeout_ns] (default -1) for the first one and not at all
    for the others; [Error] with [Empty] when none came in time.  Frames are
    in ring order. *)

val stats : t -> (Stats.t, Error.t) result
(** [stats r] reads the channel's counters. *)

val max_payload : t -> int
(** [max_payload r] is the largest payload the channel accepts. *)

val name : t -> string
(** [name r] is the channel name [r] was opened with. *)

val set_spin : t -> int -> unit
(** [set_spin r ns] sets how long a waiting read spins before it sleeps
    (default 50 us).  No effect on a closed reader. *)

val set_stuck_timeout : t -> int -> unit
(** [set_stuck_timeout r ns] sets how long a claimed, never committed frame
    (its writer died mid-write) may block the reader before it is skipped
    (default 2 s).  No effect on a closed reader. *)

val close : t -> unit
(** [close r] detaches the reader, so another may attach; later calls on [r]
    fail with [Closed].  Closing twice is harmless.  No other thread may be
    using [r] at the time.  An unreachable reader is closed by the GC. *)
