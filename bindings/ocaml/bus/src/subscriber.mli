(** Bounded FIFO queues the bus fills and a consumer drains (Python's
    [mycelium_shm.bus.subscriber.Subscriber]).

    The bus puts each matching message in the queue as the very value that
    was published (no copy, no encoding).  When the queue is full its
    {!overflow} policy decides:
    - [Block] (default): the publishing thread waits for room; nothing is
      lost.  Never publish into a [Block] subscriber from the thread that
      drains it.
    - [Drop_oldest]: the oldest queued message is discarded ({!dropped}).
    - [Drop_newest]: the new message is discarded ({!dropped}).
    - [Raise]: the publish returns [Error (Overflow _)] and the message is
      not queued; a frame from a transport, which has no publisher to tell,
      is dropped and counted in {!dropped} instead.

    Fill from any thread; drain from one consumer at a time. *)

type overflow = Block | Drop_oldest | Drop_newest | Raise  (** See above. *)

type 'a t
(** A queue of ['a]. *)

val create : ?capacity:int -> ?overflow:overflow -> unit -> 'a t
(** [create ()] is an empty open queue of at most [capacity] (default 1024)
    messages; [Invalid_argument] if [capacity < 1].  Usually made by
    [Bus.subscriber]. *)

val offer : ?from_transport:bool -> 'a t -> 'a -> (unit, Bus_error.t) result
(** [offer q x] queues [x] under the policy (the bus calls this).  [Error
    (Overflow _)] under [Raise] when full (unless [from_transport]); [Error
    (Closed _)] if a [Block] wait was ended by {!close}.  After {!close},
    offers are ignored ([Ok ()]). *)

val get : ?timeout:float -> 'a t -> ('a, Bus_error.t) result
(** [get q] removes the oldest message, waiting up to [timeout] seconds
    (default: for ever); [Error (Timeout _)] when nothing came in time,
    [Error (Closed _)] once [q] is closed and empty. *)

val try_get : 'a t -> 'a option
(** [try_get q] is the oldest message, if one is queued, without waiting. *)

val drain : 'a t -> 'a list
(** [drain q] removes and returns every queued message, oldest first. *)

val length : 'a t -> int
(** [length q] is the number of queued messages. *)

val capacity : 'a t -> int
(** [capacity q] is the bound given to {!create}. *)

val policy : 'a t -> overflow
(** [policy q] is the overflow policy. *)

val dropped : 'a t -> int
(** [dropped q] counts messages discarded by [Drop_oldest]/[Drop_newest],
    and transport frames refused under [Raise]. *)

val close : 'a t -> unit
(** [close q] unsubscribes: later offers are ignored, blocked publishers get
    [Closed], and {!get} returns what is queued, then [Closed].  Twice is
    harmless. *)

val is_closed : 'a t -> bool
(** [is_closed q] is whether {!close} was called. *)

val on_close : 'a t -> (unit -> unit) -> unit
(** [on_close q f] runs [f] (once) when [q] is closed; the bus uses it to
    unsubscribe. *)
