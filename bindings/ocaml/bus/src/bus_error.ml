type t =
  | Closed of string
  | Overflow of string
  | Full of string
  | Timeout of string
  | Schema_mismatch of string
  | Transport of string
  | Channel of Mycelium_shm.Error.t
  | Encode of string
  | Decode of Mycelium_codec.error
  | Plan of string
  | Service of string

exception Bus_error of t

let kind_name = function
  | Closed _ -> "BusClosed"
  | Overflow _ -> "SubscriberOverflow"
  | Full _ -> "Full"
  | Timeout _ -> "TimeoutError"
  | Schema_mismatch _ -> "SchemaMismatch"
  | Transport _ -> "TransportError"
  | Channel e -> Mycelium_shm.Error.kind_name e.Mycelium_shm.Error.code
  | Encode _ -> "EncodeError"
  | Decode _ -> "DecodeError"
  | Plan _ -> "PlanError"
  | Service _ -> "ServiceError"

let detail = function
  | Closed s | Overflow s | Full s | Timeout s | Schema_mismatch s | Transport s
  | Encode s | Plan s | Service s ->
      s
  | Channel e -> Mycelium_shm.Error.to_string e
  | Decode e -> Mycelium_codec.error_to_string e

let to_string e =
  let d = String.map (function '\n' -> ' ' | c -> c) (detail e) in
  if d = "" then kind_name e else kind_name e ^ ": " ^ d

let pp ppf e = Format.pp_print_string ppf (to_string e)
let get_exn = function Ok v -> v | Error e -> raise (Bus_error e)

let of_channel (e : Mycelium_shm.Error.t) =
  match e.code with
  | Mycelium_shm.Error.Schema_mismatch -> Schema_mismatch e.message
  | Mycelium_shm.Error.Full -> Full e.message
  | _ -> Channel e
