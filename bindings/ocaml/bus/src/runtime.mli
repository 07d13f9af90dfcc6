(** The runtime hosting one node's services (Python's [Runtime]).

    {!start} gives each service a mailbox (a [Block] {!Subscriber} of
    {!Msg.packed} over the types it handles, [mailbox_size] deep) and a
    POSIX thread, then starts the bus's inbound endpoints, so no frame
    arrives before its subscribers exist.

    A handler (or [on_start]) that raises is logged and the service
    restarts after a pause that doubles with every consecutive failure,
    from [restart_initial] (0.05 s) up to [restart_max] (5 s) (a handled
    message resets the count): a fresh instance from the same factory,
    [on_start] again, then the next messages of the same mailbox.  With
    [max_restarts] the service gives up after that many consecutive
    failures and the node shuts down with exit code 1.

    {!run} blocks until SIGINT or SIGTERM (or {!request_stop}), then shuts
    down cleanly ({!stop}): inbound endpoints close first, each service
    drains its mailbox in topology order and runs [on_stop], and the bus
    flushes and closes its links, so nothing already published is lost.
    The signal handlers only record the signal and write a byte to a pipe
    (no lock), so a signal landing in any thread, at any point, cannot
    deadlock the shutdown; signals after the first change nothing. *)

type t
(** A runtime. *)

(** One hosted service. *)
type spec = {
  name : string;  (** Its name in the topology. *)
  consumes : string list option;
      (** The message names the topology lets it consume; a handler for
          another type is an error (no node would send it).  [None]: no
          check. *)
  config : Yojson.Safe.t;  (** Its [config], for {!Service.config}. *)
  factory : Service.factory;  (** Builds its instances. *)
}

val create :
  ?mailbox_size:int ->
  ?restart_initial:float ->
  ?restart_max:float ->
  ?max_restarts:int ->
  Bus.t ->
  spec list ->
  t
(** [create bus specs] hosts [specs] (in topology order) on [bus]. *)

val bus : t -> Bus.t
(** [bus rt] is the bus given to {!create}. *)

val start : t -> (unit, Bus_error.t) result
(** [start rt] builds the first instance of every service (a factory's
    [Error], or a handler of a type not in [consumes], is [Error (Service
    _)] and nothing is started), opens the mailboxes, starts the service
    threads, then the bus's endpoints. *)

val request_stop : t -> unit
(** [request_stop rt] makes {!run} (or {!wait}) return; thread-safe. *)

val stopping : t -> bool
(** [stopping rt] is true once a stop was requested. *)

val wait : t -> unit
(** [wait rt] blocks (runtime lock released) until a stop is requested or,
    after {!install_signals}, SIGINT/SIGTERM arrives. *)

val stop : ?timeout:float -> t -> unit
(** [stop rt] shuts down (see above), waiting up to [timeout] (5 s) per
    service and per link.  Twice is harmless. *)

val run : ?handle_signals:bool -> t -> int
(** [run rt] is {!install_signals} (unless [handle_signals] is false),
    {!start}, {!wait}, {!stop}; the exit code: 0, 1 if a service gave up
    after [max_restarts], 2 if it could not start (logged).  A signal
    received before [run] (after {!install_signals}) shuts the node down
    without starting it. *)

val install_signals : unit -> unit
(** [install_signals ()] catches SIGINT and SIGTERM from now on (for every
    runtime of the process); call it first thing so a signal during
    start-up is not lost.  {!Node.main} does. *)

val signalled : unit -> int option
(** [signalled ()] is the first stop signal caught, if any. *)

val restarts : t -> string -> int
(** [restarts rt name] is how many times service [name] was restarted
    ([Not_found] if there is none). *)

val failed : t -> bool
(** [failed rt] is whether a service gave up after [max_restarts]. *)
