(** Message types as values: what the bus needs to know about one type of a
    schema, with a witness that lets it hand published values to handlers
    without encoding them.

    Make one descriptor per message type, once, at the top of a module, and
    share it:
    {[
      let tick = Mycelium_bus.Msg.v (module Trading.MarketTick)
      let order = Mycelium_bus.Msg.v (module Trading.OrderRequest)
    ]}
    Two descriptors of the same type id still work together (the bus then
    passes values between them through their encoding), but cost an encode
    and a decode per message. *)

(** What {!v} needs: the generated message modules ([Trading.MarketTick],
    ...) have it. *)
module type MESSAGE = sig
  type t

  val type_id : int
  val name : string
  val encode : t -> string
  val decode : string -> (t, Mycelium_codec.error) result
end

type 'a t
(** A descriptor of messages of OCaml type ['a]. *)

val v : (module MESSAGE with type t = 'a) -> 'a t
(** [v (module M)] is a fresh descriptor of [M]'s messages. *)

val type_id : 'a t -> int
(** [type_id m] is the schema's type id of [m]'s messages. *)

val name : 'a t -> string
(** [name m] is the schema's message name, e.g. ["MarketTick"]. *)

val encode : 'a t -> 'a -> (string, Bus_error.t) result
(** [encode m x] is [x]'s payload; [Encode] if a field does not fit its
    wire type. *)

val decode : 'a t -> string -> ('a, Bus_error.t) result
(** [decode m payload] decodes, checking every length ([Decode]). *)

type ('a, 'b) eq = Refl : ('a, 'a) eq  (** Proof that two types are equal. *)

val same : 'a t -> 'b t -> ('a, 'b) eq option
(** [same a b] is [Some Refl] iff [a] and [b] are the same descriptor. *)

(** A descriptor of any type. *)
type any = Any : 'a t -> any

(** A message with its descriptor (what a service mailbox holds). *)
type packed = Pack : 'a t * 'a -> packed
