type kind = Short | Length | Trailing | Utf8 | Bool | Unknown_type
type error = { kind : kind; message : string }

let kind_name = function
  | Short -> "short"
  | Length -> "length"
  | Trailing -> "trailing"
  | Utf8 -> "utf8"
  | Bool -> "bool"
  | Unknown_type -> "unknown_type"

let error_to_string e = kind_name e.kind ^ ": " ^ e.message

exception Decode_error of error

let () =
  Printexc.register_printer (function
    | Decode_error e -> Some ("Decode_error(" ^ error_to_string e ^ ")")
    | _ -> None)

let fail kind fmt =
  Printf.ksprintf (fun message -> raise (Decode_error { kind; message })) fmt

let unknown_type id =
  Error
    { kind = Unknown_type; message = Printf.sprintf "type id %d is not in the schema" id }

(* ---- UTF-8 (Unicode 15, table 3-7: well-formed byte sequences) ---- *)

let is_valid_utf8 s =
  let n = String.length s in
  let byte i = Char.code (String.unsafe_get s i) in
  let cont i = i < n && byte i land 0xC0 = 0x80 in
  let in_range i lo hi = i < n && byte i >= lo && byte i <= hi in
  let rec go i =
    if i >= n then true
    else
      let c = byte i in
      if c < 0x80 then go (i + 1)
      else if c >= 0xC2 && c <= 0xDF then cont (i + 1) && go (i + 2)
      else if c = 0xE0 then in_range (i + 1) 0xA0 0xBF && cont (i + 2) && go (i + 3)
      else if (c >= 0xE1 && c <= 0xEC) || c = 0xEE || c = 0xEF then
        cont (i + 1) && cont (i + 2) && go (i + 3)
      else if c = 0xED then in_range (i + 1) 0x80 0x9F && cont (i + 2) && go (i + 3)
      else if c = 0xF0 then
        in_range (i + 1) 0x90 0xBF && cont (i + 2) && cont (i + 3) && go (i + 4)
      else if c >= 0xF1 && c <= 0xF3 then
        cont (i + 1) && cont (i + 2) && cont (i + 3) && go (i + 4)
      else if c = 0xF4 then
        in_range (i + 1) 0x80 0x8F && cont (i + 2) && cont (i + 3) && go (i + 4)
      else false
  in
  go 0

(* ---- decoding ---- *)

type cursor = { buf : string; mutable pos : int }

(* Reserve [size] bytes of a fixed-width item; Short if they are not there. *)
let take c size path field =
  let p = c.pos in
  let n = String.length c.buf in
  if p + size > n then
    fail Short "%s.%s: needs bytes %d..%d, the payload has %d" path field p
      (p + size) n;
  c.pos <- p + size;
  p

let decode read payload =
  let c = { buf = payload; pos = 0 } in
  match read c with
  | v ->
      let n = String.length payload in
      if c.pos <> n then
        Error
          {
            kind = Trailing;
            message = Printf.sprintf "%d bytes after the last field" (n - c.pos);
          }
      else Ok v
  | exception Decode_error e -> Error e

let bool c path field =
  let p = take c 1 path field in
  match String.unsafe_get c.buf p with
  | '\000' -> false
  | '\001' -> true
  | ch -> fail Bool "%s.%s: byte %d is not a bool (0 or 1)" path field (Char.code ch)

let u8 c path field = String.get_uint8 c.buf (take c 1 path field)
let u16 c path field = String.get_uint16_le c.buf (take c 2 path field)

let u32 c path field =
  Int32.to_int (String.get_int32_le c.buf (take c 4 path field)) land 0xFFFF_FFFF

let u64 c path field = String.get_int64_le c.buf (take c 8 path field)
let i8 c path field = String.get_int8 c.buf (take c 1 path field)
let i16 c path field = String.get_int16_le c.buf (take c 2 path field)
let i32 c path field = Int32.to_int (String.get_int32_le c.buf (take c 4 path field))
let i64 = u64

let f32 c path field =
  Int32.float_of_bits (String.get_int32_le c.buf (take c 4 path field))

let f64 c path field =
  Int64.float_of_bits (String.get_int64_le c.buf (take c 8 path field))

(* A u32 count and [count * width] bytes after it: the start offset. *)
let prefixed c width path field =
  let count = u32 c path field in
  let start = c.pos in
  let stop = start + (count * width) in
  let n = String.length c.buf in
  if stop > n then
    fail Length "%s.%s: length %d runs to byte %d, past the end of the payload (%d bytes)"
      path field count stop n;
  c.pos <- stop;
  (start, count)

let bytes c path field =
  let start, len = prefixed c 1 path field in
  String.sub c.buf start len

let str c path field =
  let s = bytes c path field in
  if not (is_valid_utf8 s) then fail Utf8 "%s.%s: invalid UTF-8" path field;
  s

let fixed n c path field = String.sub c.buf (take c n path field) n

let array width elt c path field =
  let start, count = prefixed c width path field in
  let stop = c.pos in
  c.pos <- start;
  let a = Array.init count (fun _ -> elt c path field) in
  assert (c.pos = stop);
  a

(* ---- encoding ---- *)

let bad path field fmt =
  Printf.ksprintf (fun m -> invalid_arg (path ^ "." ^ field ^ ": " ^ m)) fmt

let check lo hi ty path field v =
  if v < lo || v > hi then bad path field "%d out of range for %s" v ty

let add_bool b _ _ v = Buffer.add_char b (if v then '\001' else '\000')

let add_u8 b path field v =
  check 0 0xFF "u8" path field v;
  Buffer.add_uint8 b v

let add_u16 b path field v =
  check 0 0xFFFF "u16" path field v;
  Buffer.add_uint16_le b v

let add_u32 b path field v =
  check 0 0xFFFF_FFFF "u32" path field v;
  Buffer.add_int32_le b (Int32.of_int v)

let add_u64 b _ _ v = Buffer.add_int64_le b v

let add_i8 b path field v =
  check (-0x80) 0x7F "i8" path field v;
  Buffer.add_int8 b v

let add_i16 b path field v =
  check (-0x8000) 0x7FFF "i16" path field v;
  Buffer.add_int16_le b v

let add_i32 b path field v =
  check (-0x8000_0000) 0x7FFF_FFFF "i32" path field v;
  Buffer.add_int32_le b (Int32.of_int v)

let add_i64 = add_u64
let add_f32 b path field v =
  let bits = Int32.bits_of_float v in
  (* As Python's struct.pack: a finite value beyond the f32 range is refused
     rather than turned into an infinity. *)
  if Float.is_finite v && not (Float.is_finite (Int32.float_of_bits bits)) then
    bad path field "%h is too large for f32" v;
  Buffer.add_int32_le b bits
let add_f64 b _ _ v = Buffer.add_int64_le b (Int64.bits_of_float v)

let add_count b path field n =
  if n > 0xFFFF_FFFF then bad path field "length %d does not fit a u32" n;
  Buffer.add_int32_le b (Int32.of_int n)

let add_bytes b path field s =
  add_count b path field (String.length s);
  Buffer.add_string b s

let add_str b path field s =
  if not (is_valid_utf8 s) then bad path field "not valid UTF-8";
  add_bytes b path field s

let add_fixed n b path field s =
  if String.length s <> n then
    bad path field "bytes[%d] needs %d bytes, got %d" n n (String.length s);
  Buffer.add_string b s

let add_array elt b path field a =
  add_count b path field (Array.length a);
  Array.iter (elt b path field) a

(* ---- reflection ---- *)

type ftype =
  | T_bool
  | T_u8
  | T_u16
  | T_u32
  | T_u64
  | T_i8
  | T_i16
  | T_i32
  | T_i64
  | T_f32
  | T_f64
  | T_str
  | T_bytes
  | T_fixed of int
  | T_array of ftype
  | T_message of string

type value =
  | Bool of bool
  | Int of int
  | Int64 of int64
  | Float of float
  | String of string
  | Array of value array
  | Record of (string * value) list

let field message v name =
  match v with
  | Record fs -> (
      match List.assoc_opt name fs with
      | Some x -> x
      | None -> invalid_arg (Printf.sprintf "%s: no field %S" message name))
  | _ -> invalid_arg (Printf.sprintf "%s: not a record" message)

let get_bool what = function Bool b -> b | _ -> invalid_arg (what ^ ": not a bool")
let get_int what = function Int i -> i | _ -> invalid_arg (what ^ ": not an int")

let get_int64 what = function
  | Int64 i -> i
  | _ -> invalid_arg (what ^ ": not an int64")

let get_float what = function
  | Float f -> f
  | _ -> invalid_arg (what ^ ": not a float")

let get_string what = function
  | String s -> s
  | _ -> invalid_arg (what ^ ": not a string")

let get_array what f = function
  | Array a -> Array.map f a
  | _ -> invalid_arg (what ^ ": not an array")

module type SCHEMA = sig
  type message

  val schema_digest : string
  val schema_digest_hex : string
  val messages : (string * int) list
  val fields : string -> (string * ftype) list
  val type_id : message -> int
  val name : message -> string
  val encode : message -> int * string
  val decode : type_id:int -> string -> (message, error) result
  val to_value : message -> value
  val of_value : string -> value -> message
end
