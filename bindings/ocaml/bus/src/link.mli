(** Outbound links: where a bus writes the frames of the message types a
    peer node consumes (Python's [ShmLink] and [SocketLink]), or the
    node's own broadcast channel ({!shm_publication}, Python's
    [ShmPublication]).

    A link may be opened before its peer is up: frames queue (at most
    [max_pending]) while a background thread retries with exponential
    backoff ([backoff_initial] doubling up to [backoff_max] seconds), and
    are written first, in order, once it connects.  A schema mismatch is
    permanent: the link stops and {!send}, {!flush} and {!wait_connected}
    return it.  {!close} is the clean end: it writes everything queued (up
    to a timeout), and for sockets half-closes and waits for the peer to
    read to the end.  Frames of one link arrive in the order sent. *)

type t
(** A link. *)

val shm :
  ?send_timeout:float ->
  ?max_pending:int ->
  ?backoff_initial:float ->
  ?backoff_max:float ->
  digest:string ->
  string ->
  t
(** [shm ~digest channel] writes into the shared-memory channel [channel]
    (the peer's inbound, created by the peer with schema digest [digest],
    32 raw bytes).  A write waits up to [send_timeout] seconds (default 5)
    for room in the ring, then fails with [Full].  Backoff defaults:
    0.005 s to 0.5 s; [max_pending] 65536. *)

val socket :
  ?max_payload:int ->
  ?max_pending:int ->
  ?send_timeout:float ->
  ?connect_timeout:float ->
  ?backoff_initial:float ->
  ?backoff_max:float ->
  digest:string ->
  Sock.address ->
  t
(** [socket ~digest address] streams frames to a socket inbound (any
    language's) after the 48-byte hello exchange.  {!send} only queues; a
    sender thread writes (batches of up to 256 KiB).  When [max_pending]
    (65536) frames are queued, {!send} waits up to [send_timeout] (5 s),
    then fails with [Full].  Frames written into a connection that then
    broke are counted in [lost] and logged; frames not yet written are kept
    for the next connection.  Backoff defaults: 0.01 s to 1 s. *)

val shm_publication :
  ?capacity:int ->
  ?spare_readers:int ->
  ?untether:float ->
  ?send_timeout:float ->
  ?unlink_on_close:bool ->
  digest:string ->
  subscribers:string list ->
  string ->
  (t, Bus_error.t) result
(** [shm_publication ~digest ~subscribers channel] is the broadcast channel
    a node publishes on (Python's [ShmPublication]): every subscribing node
    reads its frames with its own cursor ({!Inbound.shm_subscription}), so
    a publish reaching K nodes is one write.  It creates the channel (or
    attaches to it, after a restart) with one cursor slot per subscriber
    plus [spare_readers] (default 1, for tools such as [mycelium-shm
    tail]), a ring of [capacity] bytes (default 1 MiB) and an untether
    window of [untether] seconds (default 10; rounded to whole
    milliseconds), then registers a durable, tethered cursor named after
    each subscriber (a live subscriber holding its cursor already is
    fine), so nothing is published before a
    subscriber's cursor exists, whenever its process starts.  A write waits
    up to [send_timeout] seconds (default 5) for the slowest tethered
    subscriber, then fails with [Full]; one that died or held the writers
    back for the untether window is untethered and counts what it misses.
    Frames are in the ring once a send returns; {!flush} waits until every
    subscriber has attached once (the broadcast twin of a mailbox link
    reaching its peer's channel); {!close} detaches (and removes the
    channel if [unlink_on_close], default false).  Errors: [Schema_mismatch]
    if the channel exists with another digest; [Channel] errors otherwise
    (e.g. [Bad_argument] for a channel with another number of slots). *)

val name : t -> string
(** [name l] is ["shm:CHANNEL"], ["shm-pub:CHANNEL"], ["unix:PATH"] or
    ["tcp:HOST:PORT"]. *)

val send : t -> type_id:int -> string -> (unit, Bus_error.t) result
(** [send l ~type_id payload] writes or queues one frame. *)

val flush : ?timeout:float -> t -> (bool, Bus_error.t) result
(** [flush l] waits until every frame sent so far left this process
    ([Ok false] on timeout; default: no timeout). *)

val wait_connected : ?timeout:float -> t -> (bool, Bus_error.t) result
(** [wait_connected l] waits for the peer ([Ok false] on timeout); the
    link's permanent error, if any. *)

val connected : t -> bool
(** [connected l] is whether the peer is attached/connected now. *)

val pending : t -> int
(** [pending l] is the number of frames queued, not yet written. *)

val stats : t -> (string * int) list
(** [stats l]: [sent] frames, [lost] frames (sockets), [connects]. *)

val close : ?timeout:float -> t -> unit
(** [close l] flushes for up to [timeout] seconds (default 5), ends the
    connection cleanly and stops the link's thread.  Twice is harmless. *)
