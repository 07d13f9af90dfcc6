(** The message bus: typed publish/subscribe inside a process, bridged to
    other processes (the OCaml twin of Python's [mycelium_shm.bus.MessageBus];
    the same concepts, frames and handshake).

    {[
      let tick = Msg.v (module Trading.MarketTick)
      let bus = Bus.create ~digest:Trading.schema_digest ()
      let _ = Bus.subscribe bus tick (fun t -> Printf.printf "%Ld\n" t.seq)
      let ticks = Bus.publisher bus tick
      let () = Bus.publish ticks { symbol = "EURUSD"; seq = 1L; ... } |> Bus_error.get_exn
    ]}

    {b Local delivery} is synchronous and copy-free: {!publish} calls every
    handler of the message's type in the publishing thread with the very
    value published, and puts that value in every matching {!Subscriber}.
    A handler that raises is logged (and counted in [handler_errors]); the
    other handlers still run.  Publishing takes no lock (routes are
    replaced, never mutated), subscribing and publishing are safe from any
    thread.

    {b Bridges.}  {!add_link} sends the chosen types to a {!Link}: a
    published message of such a type is encoded once and written to every
    link of its type.  {!add_inbound} attaches an {!Inbound} endpoint; each
    frame arriving there is decoded and delivered to local subscribers
    only, never written to a link (no echo, no loops, no forwarding).

    {b Scheduling} (OCaml 4.13 has no domains): everything runs on POSIX
    threads under the one runtime lock.  Handlers of local messages run in
    the publisher's thread; handlers of remote messages run in the inbound
    endpoint's reader thread (see {!Inbound}), which waits in C (channel
    reads) or in [read]/[accept] with the runtime lock released, so an
    idle bus costs no CPU and a busy one never starves the other threads.
    Socket links write from a sender thread of their own.  The {!Runtime}
    runs each service in its own thread with a mailbox, so a service's
    handlers never run concurrently. *)

type t
(** A bus. *)

val create : ?name:string -> ?on_error:(string -> exn -> unit) -> digest:string -> unit -> t
(** [create ~digest ()] is a bus whose links and endpoints use the schema
    digest [digest] (32 raw bytes, e.g. [Trading.schema_digest]).  [on_error
    context exn] sees the exceptions of handlers (default: a log line). *)

val name : t -> string
(** [name bus] is the name given to {!create} (default ["bus"]). *)

val digest : t -> string
(** [digest bus] is the schema digest given to {!create}. *)

(** {1 Publishing} *)

type 'a publisher
(** Publishes messages of one type. *)

val publisher : t -> 'a Msg.t -> 'a publisher
(** [publisher bus m] publishes messages described by [m]. *)

val publish : 'a publisher -> 'a -> (unit, Bus_error.t) result
(** [publish p x] delivers [x] to every local handler and subscriber of
    its type and writes it (encoded once) to every link of its type.
    Errors: [Closed] after {!close}; [Encode] if a field does not fit its
    wire type; otherwise the first error of a [Raise] subscriber
    ([Overflow]) or a link ([Full], [Schema_mismatch], ...): every other
    subscriber and link still got the message. *)

val publish_exn : 'a publisher -> 'a -> unit
(** [publish_exn] is {!publish}, raising {!Bus_error.Bus_error}. *)

val send : t -> 'a Msg.t -> 'a -> (unit, Bus_error.t) result
(** [send bus m x] is [publish (publisher bus m) x]. *)

(** {1 Subscribing} *)

type subscription
(** A handler's registration. *)

val subscribe : t -> 'a Msg.t -> ('a -> unit) -> subscription
(** [subscribe bus m f] calls [f x] for every message [x] of [m]'s type, in
    the delivering thread.  On a closed bus [f] is never called. *)

val unsubscribe : subscription -> unit
(** [unsubscribe s] stops the calls; twice is harmless. *)

val subscriber :
  ?capacity:int -> ?overflow:Subscriber.overflow -> t -> 'a Msg.t -> 'a Subscriber.t
(** [subscriber bus m] is a bounded queue (default 1024, [Block]) receiving
    every message of [m]'s type; closing it unsubscribes. *)

val feed : t -> 'a Msg.t -> 'b Subscriber.t -> ('a -> 'b) -> subscription
(** [feed bus m q wrap] also puts [wrap x] into [q] for every message [x]
    of [m]'s type: one queue for several types (e.g. of {!Msg.packed}, as
    the runtime's mailboxes).  Closing [q] unsubscribes. *)

(** {1 Bridges} *)

val add_link : t -> Link.t -> int list -> unit
(** [add_link bus link type_ids] writes every published message of those
    type ids to [link] too.  The bus owns the link: {!close} flushes and
    closes it. *)

val links_of : t -> int -> Link.t list
(** [links_of bus type_id] is the links a message of that type goes to. *)

val add_inbound : t -> Inbound.t -> unit
(** [add_inbound bus ep] delivers the frames arriving on [ep] to local
    subscribers, from {!start} on (at once if started).  The bus owns [ep]. *)

val start : t -> unit
(** [start bus] starts the endpoints' reader threads (subscribe first). *)

val deliver_frame : t -> int -> string -> unit
(** [deliver_frame bus type_id payload] decodes a frame from a transport
    and hands it to local subscribers only (the endpoints call this).  A
    frame that does not decode is counted ([decode_errors]) and logged,
    rate-limited per endpoint (a few lines a second, then one summary line
    ["... N more undecodable frames not logged"], at the latest when the
    endpoint closes; see {!Throttle}). *)

val stats : t -> (string * int) list
(** [stats bus]: [received] frames, [unrouted] (nobody subscribes),
    [decode_errors], [handler_errors]. *)

(** {1 Lifetime} *)

val flush : ?timeout:float -> t -> bool
(** [flush bus] waits until every link wrote what it was given; [false] on
    timeout or a link's permanent error. *)

val close_inbound : t -> unit
(** [close_inbound bus] stops receiving; publishing and links still work. *)

val close : ?timeout:float -> t -> unit
(** [close bus] stops receiving, flushes and closes every link (up to
    [timeout] seconds each, default 5), closes every subscriber.  Twice is
    harmless. *)

val is_closed : t -> bool
(** [is_closed bus] is whether {!close} was called. *)
