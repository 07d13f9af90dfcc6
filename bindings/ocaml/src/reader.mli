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

type bigstring = (char, Bigarray.int8_unsigned_elt, Bigarray.c_layout) Bigarray.Array1.t
(** A byte buffer outside the OCaml heap, owned by the caller; make one with
    [Bigarray.Array1.create Bigarray.char Bigarray.c_layout n]. *)

val read_into :
  ?timeout_ns:int -> ?off:int -> ?len:int -> t -> bigstring -> (int * int, Error.t) result
(** [read_into r buf] takes the next frame like {!read}, but copies its
    payload into [buf] (from [off], default 0, into at most [len] bytes,
    default the rest of [buf]) instead of a fresh string:
    [Ok (type_id, payload_len)].  One copy, ring to [buf], and no
    allocation on the OCaml heap, so reusing [buf] for every frame keeps
    large frames (above [Max_young_wosize], about 2 KiB) from going to the
    major heap one by one and driving major collections and compactions.
    A frame longer than [len] is left in the ring and the call fails with
    [Bad_argument] (read it with a larger buffer, e.g. of {!max_payload}
    bytes); so does a range outside [buf].  Waiting, timeouts and signals
    are those of {!read}. *)

val with_peek :
  ?timeout_ns:int -> t -> (int -> bigstring -> 'a) -> ('a, Error.t) result
(** [with_peek r f] waits for the next frame like {!read} and is
    [Ok (f type_id view)], [view] a Bigarray over the payload where it lies
    in the ring: no copy at all.  The frame is consumed when [f] returns or
    raises.  [view] is valid only during [f], and only until [f] calls [r]
    again: [f] must not keep it (copy what it needs, or forward it with
    {!Writer.write_bigstring}) nor write to it.  Errors (from the wait) are
    those of {!read}; [f] is then not called. *)

val read_batch : ?timeout_ns:int -> ?max_frames:int -> t -> (frame list, Error.t) result
(** [read_batch r] takes up to [max_frames] (default 64) frames at once,
    waiting up to [timeout_ns] (default -1) for the first one and not at all
    for the others; [Error] with [Empty] when none came in time.  Frames are
    in ring order.  [max_frames] outside [1..0xFFFF_FFFF] is [Bad_argument]
    naming it (checked before anything is allocated). *)

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
(** [set_stuck_timeout r ns] sets how long a claimed, not yet committed
    frame may hold the reader before it checks whether the claiming writer
    is alive (default 10 ms, then again every such interval).  A dead
    writer's claim is skipped; a live writer's is waited for (back-pressure),
    shown by {!Channel.inspect} as [stalled_pid] and ended, if need be, by
    {!Channel.force_unblock}.  No effect on a closed reader. *)

val close : t -> unit
(** [close r] detaches the reader, so another may attach; later calls on [r]
    fail with [Closed].  Closing twice is harmless.  No other thread may be
    using [r] at the time.  An unreachable reader is closed by the GC. *)
