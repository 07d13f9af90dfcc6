(** Inbound endpoints: where frames addressed to this node arrive (Python's
    [ShmInbound] and [SocketInbound]), or another node's broadcast channel
    read with this node's cursor ({!shm_subscription}, Python's
    [ShmSubscription]).

    Scheduling: every endpoint reads in its own POSIX thread(s), which call
    the [deliver] function given to {!start}.  A shared-memory endpoint has
    one reader thread, blocked in the channel's read with the OCaml runtime
    lock released (50 ms slices, so {!close} is prompt).  A socket endpoint
    has one thread blocked in [accept] and one worker thread per open
    connection blocked in [read], both releasing the runtime lock; the
    connections' [deliver] calls are serialized by a lock of the endpoint,
    so handlers see one frame at a time and each sender's frames in order.
    Threads rather than one [select] loop: the channel reads already
    release the runtime lock, a blocked reader costs no CPU, and [select]
    would fail on descriptors above 1024.  The price of a thread per
    connection is bounded by [max_connections]: workers are pooled (a
    worker whose connection ended waits, without CPU, for the next one
    until {!close}), so connection churn starts no threads once the pool
    is as large as the most connections open at once (OCaml 4.13 leaks
    about 4 KiB of C heap per ended thread: a thread per connection made
    memory grow without bound under churn).

    Logging: connection errors and refused connections are rate-limited
    per endpoint (see {!Throttle}; refusals at most one line a second,
    with the count since the previous line); what was left out is
    summarized, at the latest by {!close}. *)

type t
(** An endpoint. *)

val shm :
  ?capacity:int -> ?unlink_on_close:bool -> digest:string -> string -> (t, Bus_error.t) result
(** [shm ~digest channel] becomes the reader of [channel], creating it
    (ring of [capacity] bytes, default 1 MiB, schema digest [digest]) or
    taking over one whose reader died, reading what was written
    meanwhile.  [unlink_on_close] (default false) removes the channel in
    {!close}. *)

val busy_grace : float
(** How long a subscription keeps trying a cursor another live reader
    holds: 1 second. *)

val shm_subscription :
  ?policy:Mycelium_shm.Cursor.policy ->
  ?backoff_initial:float ->
  ?backoff_max:float ->
  ?batch:int ->
  digest:string ->
  cursor:string ->
  string ->
  (t, Bus_error.t) result
(** [shm_subscription ~digest ~cursor channel] reads another node's
    broadcast channel ({!Link.shm_publication}) with this node's own
    durable cursor [cursor] (the node's name) and [policy] (default
    [Tethered]); Python's [ShmSubscription].  It tries to attach at once:
    a channel that does not exist yet is no error (processes start in any
    order: the reader thread retries with backoff, [backoff_initial]
    doubling up to [backoff_max] seconds, 0.005 to 0.02: a subscriber starts reading within 20 ms of its publisher), but a channel of
    another digest is [Schema_mismatch].  A cursor another live reader
    holds is tried again for {!busy_grace} seconds (something that attached
    it for a moment), then is a [Channel] error ([Reader_busy]).  A restarted node resumes at its
    cursor, so nothing published while it was down is lost, unless the
    publisher untethered it: those frames are logged (one line) and counted
    in [lost].  Reads take up to [batch] (256) frames at a time.  {!close}
    detaches; the cursor stays. *)

val socket :
  ?max_payload:int ->
  ?max_connections:int ->
  ?handshake_timeout:float ->
  ?frame_timeout:float ->
  ?idle_timeout:float ->
  digest:string ->
  Sock.address ->
  (t, Bus_error.t) result
(** [socket ~digest address] listens at once (port 0: any free port, see
    {!address}).  Each connection sends its hello first and must complete
    the peer's within [handshake_timeout] (5 s); a digest mismatch ends
    that connection (logged, in {!errors}; the peer sees the mismatch too).
    A frame longer than the agreed maximum ([max_payload], 1 MiB, or the
    peer's smaller one) or of type 0 ends the connection before its payload
    is read; a frame begun must be complete within [frame_timeout] (30 s).
    [idle_timeout] (default none, off; positive) closes a connection that
    sends nothing for this long between frames ([timed_out]; an idle
    {!Link} reconnects by itself), so idle peers cannot hold every slot.
    Beyond [max_connections] (64, at least 1) connections, peers are
    accepted and closed at once ([refused], logged at most once a
    second with the count since the last line). *)

val name : t -> string
(** [name t] is ["shm:CHANNEL"], ["shm-sub:CHANNEL[CURSOR]"], ["unix:PATH"]
    or ["tcp:HOST:PORT"]. *)

val address : t -> Sock.address option
(** [address t] is the bound socket address (the real port), if a socket. *)

val start : t -> (int -> string -> unit) -> unit
(** [start t deliver] starts reading; [deliver type_id payload] is called
    for every frame, in the endpoint's threads.  Once only. *)

val stats : t -> (string * int) list
(** [stats t]: [frames] received; subscriptions also [lost] and
    [attached] (0 or 1); sockets also [connections] (handshaken), [open],
    [refused], [timed_out], [oversized], and their connection threads:
    [workers] (running or parked, at most [max_connections]) and
    [idle_workers] (parked). *)

val errors : t -> Bus_error.t list
(** [errors t] is the most recent connection errors (at most 32), newest
    first. *)

val close : t -> unit
(** [close t] stops receiving: ends the reader threads and connections
    (waiting up to 2 s for them), releases the channel or the listening
    socket (removing a Unix socket file).  Twice is harmless. *)
