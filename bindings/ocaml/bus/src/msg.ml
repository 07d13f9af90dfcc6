module type MESSAGE = sig
  type t

  val type_id : int
  val name : string
  val encode : t -> string
  val decode : string -> (t, Mycelium_codec.error) result
end

type _ key = ..

module type KEY = sig
  type t
  type _ key += K : t key
end

type 'a t = {
  type_id : int;
  name : string;
  enc : 'a -> string;
  dec : string -> ('a, Mycelium_codec.error) result;
  key : (module KEY with type t = 'a);
}

let v (type a) (module M : MESSAGE with type t = a) : a t =
  let module K = struct
    type t = a
    type _ key += K : t key
  end in
  { type_id = M.type_id; name = M.name; enc = M.encode; dec = M.decode; key = (module K) }

let type_id m = m.type_id
let name m = m.name

let encode m x =
  match m.enc x with
  | s -> Ok s
  | exception Invalid_argument e -> Error (Bus_error.Encode (m.name ^ ": " ^ e))

let decode m payload =
  match m.dec payload with Ok _ as r -> r | Error e -> Error (Bus_error.Decode e)

type ('a, 'b) eq = Refl : ('a, 'a) eq

let same (type a b) (x : a t) (y : b t) : (a, b) eq option =
  let module X = (val x.key) in
  let module Y = (val y.key) in
  match X.K with Y.K -> Some Refl | _ -> None

type any = Any : 'a t -> any
type packed = Pack : 'a t * 'a -> packed
