(** Writers of a channel.

    Any number of writers, in any processes and languages, may write into one
    channel at once; each frame is a [type_id] (1 to 65535) and a byte
    payload.  A writer may be shared by the threads of a process.

    A channel created with [~readers:n] is a {e broadcast} channel: up to
    [n] readers (1 to 10), each with its own cursor ({!Cursor}), get every
    frame, and one write reaches them all.  Writers wait for the slowest
    tethered reader, unless it died or held them back for the untether
    window ([~untether_ns], default 2 s) without reading: then it is
    untethered (counted) and writers go on.

    {[
      let w = Writer.attach "prices" |> Error.get_exn in
      Writer.write_exn w ~type_id:1 payload;
      Writer.close w
    ]} *)

type t
(** An open writer. *)

val create :
  ?capacity:int ->
  ?max_payload:int ->
  ?mode:int ->
  ?schema_digest:string ->
  ?readers:int ->
  ?untether_ns:int ->
  string ->
  (t, Error.t) result
(** [create name] makes the channel [name] and opens a writer on it; fails
    with [Exists] if it already exists.  [capacity] is the ring size in bytes,
    a power of two (default 1 MiB); [max_payload] the largest payload (default
    0: a quarter of the ring less 16 bytes, one frame header); [mode] the file mode (default 0:
    0600); [schema_digest] the 32-byte SHA-256 digest of the schema in use
    (default: none).  [readers] (default 0: a single-reader channel) makes a
    broadcast channel with that many cursor slots, 1 to 10
    ([Too_many_readers] above); [untether_ns] is its untether window, whole
    milliseconds from 1 ms (default: 2 s).

    {[
      (* A broadcast channel for 4 readers. *)
      let w = Writer.create ~readers:4 ~untether_ns:500_000_000 "ticks" |> Error.get_exn in
      Writer.write_exn w ~type_id:1 "to every reader"
    ]} *)

val attach : ?schema_digest:string -> ?readers:int -> string -> (t, Error.t) result
(** [attach name] opens a writer on the existing channel [name]
    ([Not_found] otherwise).  With [schema_digest], the channel's digest must
    be equal ([Schema_mismatch] otherwise); with [readers] (not 0), the
    channel must be a broadcast channel of that many slots
    ([Bad_argument] otherwise). *)

val create_or_attach :
  ?capacity:int ->
  ?max_payload:int ->
  ?mode:int ->
  ?schema_digest:string ->
  ?readers:int ->
  ?untether_ns:int ->
  string ->
  (t, Error.t) result
(** [create_or_attach name] attaches to [name], creating it first if it does
    not exist (with the arguments of {!create}). *)

val write :
  ?timeout_ns:int ->
  ?off:int ->
  ?len:int ->
  t ->
  type_id:int ->
  string ->
  (unit, Error.t) result
(** [write w ~type_id payload] copies one frame into the ring.  If the ring is
    full it waits for room, [timeout_ns] nanoseconds at most (default: -1,
    for ever; 0: not at all) and then fails with [Full].  While it waits the
    OCaml runtime lock is released; a signal ends the wait with
    [Interrupted] (OCaml signal handlers then run).  [off] and [len] select a substring of
    [payload] (default: all of it).  When the ring has room at once the
    payload is copied straight from the OCaml string; a write that has to
    wait is counted twice in [full_events]. *)

type bigstring = (char, Bigarray.int8_unsigned_elt, Bigarray.c_layout) Bigarray.Array1.t
(** A byte buffer outside the OCaml heap (the type of {!Reader.read_into}'s
    buffer). *)

val write_bigstring :
  ?timeout_ns:int ->
  ?off:int ->
  ?len:int ->
  t ->
  type_id:int ->
  bigstring ->
  (unit, Error.t) result
(** [write_bigstring w ~type_id buf] is {!write} of the bytes of [buf] from
    [off] (default 0), [len] of them (default the rest): the payload is
    copied once, straight from [buf] into the ring, whether or not the write
    has to wait, and nothing is allocated on the OCaml heap.  With
    {!Reader.read_into} it forwards a frame without a copy through an OCaml
    string.  [Bad_argument] for a range outside [buf]. *)

val write_exn :
  ?timeout_ns:int -> ?off:int -> ?len:int -> t -> type_id:int -> string -> unit
(** [write_exn] is {!write}, raising {!Error.Mycelium_error} on failure. *)

val try_write :
  ?off:int -> ?len:int -> t -> type_id:int -> string -> (unit, Error.t) result
(** [try_write w ~type_id payload] is [write ~timeout_ns:0]: [Error] with
    code [Full] at once if the ring has no room. *)

val write_batch :
  ?timeout_ns:int -> t -> (int * string) list -> (int, Error.t) result
(** [write_batch w frames] writes the [(type_id, payload)] frames with one
    claim on the ring: [Ok n] when the first [n] (at least one) were
    written, the longest prefix that fitted; the caller writes the rest
    again.  Waits up to [timeout_ns] (default -1: for ever) for room for the
    first frame, with the runtime lock released.  The payloads are copied
    once into C memory first.  A batch fails part-way only when an operator
    force-unblocks one of its frames ({!Channel.force_unblock}): [Abandoned],
    with the number of frames written before it in the error's message. *)

val stats : t -> (Stats.t, Error.t) result
(** [stats w] reads the channel's counters. *)

val max_payload : t -> int
(** [max_payload w] is the largest payload the channel accepts. *)

val name : t -> string
(** [name w] is the channel name [w] was opened with. *)

val set_spin : t -> int -> unit
(** [set_spin w ns] sets how long a waiting write spins before it sleeps
    (default 50 us).  No effect on a closed writer. *)

val close : t -> unit
(** [close w] detaches the writer; later calls on [w] fail with [Closed].
    Closing twice is harmless.  No other thread may be using [w] at the
    time.  An unreachable writer is closed by the GC. *)
