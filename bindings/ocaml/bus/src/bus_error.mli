(** Errors of the bus, its transports, services and node plans. *)

type t =
  | Closed of string  (** The bus, subscriber, link or endpoint is closed. *)
  | Overflow of string
      (** A subscriber queue under [Raise] was full (Python's
          [SubscriberOverflow]). *)
  | Full of string
      (** A link could not take the frame in time (Python's [Full]). *)
  | Timeout of string  (** Nothing arrived before the timeout. *)
  | Schema_mismatch of string
      (** The peer's schema digest differs (Python's [SchemaMismatch]). *)
  | Transport of string
      (** A peer broke the protocol, or the connection failed (Python's
          [TransportError]). *)
  | Channel of Mycelium_shm.Error.t  (** A shared-memory channel error. *)
  | Encode of string  (** A value does not fit its wire type. *)
  | Decode of Mycelium_codec.error  (** A payload did not decode. *)
  | Plan of string  (** The node plan is unreadable or inconsistent. *)
  | Service of string  (** A service could not be built or started. *)

exception Bus_error of t
(** Raised by the [_exn] variants. *)

val kind_name : t -> string
(** [kind_name e] is the name the Python bus gives this error, e.g.
    ["SchemaMismatch"], ["TransportError"], ["BusClosed"]. *)

val to_string : t -> string
(** [to_string e] is ["Kind: detail"], one line. *)

val pp : Format.formatter -> t -> unit
(** [pp ppf e] prints {!to_string}[ e]. *)

val get_exn : ('a, t) result -> 'a
(** [get_exn r] is [v] for [Ok v]; raises {!Bus_error} for [Error e]. *)

val of_channel : Mycelium_shm.Error.t -> t
(** [of_channel e] maps a channel error: a schema mismatch becomes
    {!Schema_mismatch}, [Full] becomes {!Full}, the rest {!Channel}. *)
