(** Services: actors with one handler per message type and their own state
    (the OCaml form of Python's [Service] with [@handles]).

    A service is a value built by a {!factory} from its {!context} (its
    name, the bus, its [config] from the topology); its state lives in the
    factory's closures:
    {[
      let counter ctx =
        let ( let* ) = Result.bind in
        let* limit = Service.Config.int ctx "limit" ~default:100 in
        let seen = ref 0 in
        let signals = Service.publisher ctx signal in
        Ok
          (Service.make
             ~on_stop:(fun () -> Service.log ctx "saw %d ticks" !seen)
             [ Service.handle tick (fun t ->
                   incr seen;
                   if !seen <= limit then Bus.publish_exn signals (signal_of t)) ])
    ]}
    The {!Runtime} runs each service in its own thread with a mailbox, so
    its handlers never run concurrently and its state needs no lock.  When
    a handler raises, the runtime logs it, waits (backoff), builds a fresh
    instance with the same factory, runs [on_start] again and goes on with
    the next message (the failing one is not retried). *)

(** A handler of one message type. *)
type handler = Handler : 'a Msg.t * ('a -> unit) -> handler

val handle : 'a Msg.t -> ('a -> unit) -> handler
(** [handle m f] handles the messages of [m]'s type with [f]. *)

type t = {
  handlers : handler list;  (** What the service consumes. *)
  on_start : unit -> unit;
      (** Runs in the service's thread before its first message, again
          after every restart; a producer may loop here while
          [not (stopping ctx)]. *)
  on_stop : unit -> unit;
      (** Runs in the service's thread once its mailbox is closed and
          drained. *)
}
(** A service instance. *)

val make : ?on_start:(unit -> unit) -> ?on_stop:(unit -> unit) -> handler list -> t
(** [make handlers] is a service (hooks default to doing nothing). *)

type context
(** What the runtime gives a service. *)

type factory = context -> (t, string) result
(** Builds a fresh instance; [Error reason] if it cannot (e.g. a bad
    config). *)

val context :
  name:string ->
  bus:Bus.t ->
  config:Yojson.Safe.t ->
  stopping:(unit -> bool) ->
  request_stop:(unit -> unit) ->
  context
(** [context ...] (the runtime makes these; tests may too). *)

val name : context -> string
(** [name ctx] is the service's name in the topology. *)

val bus : context -> Bus.t
(** [bus ctx] is the node's bus. *)

val config : context -> Yojson.Safe.t
(** [config ctx] is the service's [config] table from the topology ([`Null]
    or an object). *)

val publisher : context -> 'a Msg.t -> 'a Bus.publisher
(** [publisher ctx m] is [Bus.publisher (bus ctx) m]. *)

val stopping : context -> bool
(** [stopping ctx] is true once the node shuts down (loops should end). *)

val request_stop : context -> unit
(** [request_stop ctx] asks the runtime to shut the whole node down. *)

val log : context -> ('a, unit, string, unit) format4 -> 'a
(** [log ctx fmt ...] logs one info line ["service NAME: ..."]. *)

(** Typed reads of [config] keys: [Error] names the service and key. *)
module Config : sig
  val int : ?default:int -> context -> string -> (int, string) result
  (** [int ctx key] is the integer at [key] ([default] if absent). *)

  val float : ?default:float -> context -> string -> (float, string) result
  (** [float ctx key] is the number at [key] ([default] if absent). *)

  val string : ?default:string -> context -> string -> (string, string) result
  (** [string ctx key] is the string at [key] ([default] if absent). *)

  val bool : ?default:bool -> context -> string -> (bool, string) result
  (** [bool ctx key] is the boolean at [key] ([default] if absent). *)
end
