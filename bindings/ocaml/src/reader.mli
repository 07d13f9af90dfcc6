(** The reader of a channel.

    A channel has one reader at a time; it sees every writer's frames in the
    order they were claimed, each writer's frames in the order written.  If
    the reader process dies, the next reader to open the channel takes over
    from where it stopped.  A reader is used by one thread at a time (a
    second concurrent call fails with [Handle_busy]).

    On a {e broadcast} channel (created with [~readers:n], see
    {!Writer.create}), up to [n] readers read the same frames, each at its
    own cursor ({!Cursor}): [~cursor:"risk"] names it (durable: the next
    reader opening that name resumes where it stopped, without loss or
    duplicate; [Reader_busy] while a live reader holds it), [~policy] is
    [Tethered] (default) or [Lossy], and [~start] ([Tail], default, or
    [Oldest]) where a new cursor starts.  [Too_many_readers] if every slot
    is taken.

    {[
      let r = Reader.attach ~cursor:"ui" ~policy:Cursor.Lossy "ticks" |> Error.get_exn in
      (match Reader.read ~timeout_ns:1_000_000_000 r with
       | Ok f -> handle f.Reader.type_id f.Reader.payload
       | Error _ -> ());
      Printf.printf "lost %d frames\n" (Reader.lost r)
    ]}

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
  ?readers:int ->
  ?untether_ns:int ->
  ?cursor:string ->
  ?policy:Cursor.policy ->
  ?start:Cursor.start ->
  string ->
  (t, Error.t) result
(** [create name] makes the channel [name] and becomes its reader; the
    channel arguments are those of {!Writer.create}, the cursor arguments
    those of {!attach}. *)

val attach :
  ?schema_digest:string ->
  ?readers:int ->
  ?cursor:string ->
  ?policy:Cursor.policy ->
  ?start:Cursor.start ->
  string ->
  (t, Error.t) result
(** [attach name] becomes the reader of the existing channel [name];
    [Reader_busy] if a live reader holds it, [Schema_mismatch] if
    [schema_digest] is given and differs from the channel's.  On a broadcast
    channel it attaches with its own cursor: [cursor] (default: anonymous,
    freed when the reader goes; else 1 to 39 bytes without control
    characters, [Bad_argument] otherwise), [policy] (default [Tethered]),
    [start] (default [Tail]); with [readers] (not 0) the channel must have
    that many slots.  On a single-reader channel [cursor] and a [Lossy]
    policy are [Bad_argument]. *)

val create_or_attach :
  ?capacity:int ->
  ?max_payload:int ->
  ?mode:int ->
  ?schema_digest:string ->
  ?readers:int ->
  ?untether_ns:int ->
  ?cursor:string ->
  ?policy:Cursor.policy ->
  ?start:Cursor.start ->
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
    those of {!read}; [f] is then not called.

    On a lossy (or untethered) broadcast reader, writers may overwrite the
    frame while [f] looks at it: the frame is checked when [f] returns, and
    if it was overwritten the result of [f] is dropped and the call fails
    with [Lapped] (the reader goes on past the loss, counted in {!lost}).
    On other readers the frame cannot change. *)

val read_batch : ?timeout_ns:int -> ?max_frames:int -> t -> (frame list, Error.t) result
(** [read_batch r] takes up to [max_frames] (default 64) frames at once,
    waiting up to [timeout_ns] (default -1) for the first one and not at all
    for the others; [Error] with [Empty] when none came in time.  Frames are
    in ring order.  [max_frames] outside [1..0xFFFF_FFFF] is [Bad_argument]
    naming it (checked before anything is allocated). *)

val stats : t -> (Stats.t, Error.t) result
(** [stats r] reads the channel's counters. *)

val cursor_info : t -> (Cursor.info, Error.t) result
(** [cursor_info r] is this reader's cursor on a broadcast channel: name,
    policy, position, lag, frames read, lost, laps, untethers.
    [Bad_argument] on a single-reader channel. *)

val lost : t -> int
(** [lost r] is the number of frames this broadcast reader lost because
    writers lapped it (a lossy reader, or a tethered one while untethered);
    0 on a single-reader channel, which never loses a frame. *)

val laps : t -> int
(** [laps r] is the number of times writers lapped this broadcast reader
    (0 on a single-reader channel). *)

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
