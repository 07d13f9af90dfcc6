let magic = "MYCELBUS"
let version = 1
let hello_size = 48
let header_size = 8
let digest_size = 32
let default_max_payload = 1 lsl 20

let hex s =
  String.concat "" (List.map (fun c -> Printf.sprintf "%02x" (Char.code c)) (List.of_seq (String.to_seq s)))

let hello ~max_payload ~digest =
  if String.length digest <> digest_size then
    invalid_arg (Printf.sprintf "Wire.hello: digest of %d bytes, not 32" (String.length digest));
  let b = Bytes.create hello_size in
  Bytes.blit_string magic 0 b 0 8;
  Bytes.set_int32_le b 8 (Int32.of_int version);
  Bytes.set_int32_le b 12 (Int32.of_int max_payload);
  Bytes.blit_string digest 0 b 16 32;
  Bytes.unsafe_to_string b

let u32 b off = Int32.to_int (Bytes.get_int32_le b off) land 0xFFFF_FFFF

let check_hello ~digest ~max_payload peer =
  if String.length peer <> hello_size then
    Error (Bus_error.Transport (Printf.sprintf "hello of %d bytes, not 48" (String.length peer)))
  else
    let b = Bytes.unsafe_of_string peer in
    let m = String.sub peer 0 8 in
    let ver = u32 b 8 and peer_max = u32 b 12 and peer_digest = String.sub peer 16 32 in
    if m <> magic then Error (Bus_error.Transport (Printf.sprintf "peer is not a mycelium bus (magic %S)" m))
    else if ver <> version then
      Error
        (Bus_error.Transport
           (Printf.sprintf "peer speaks protocol version %d, this side %d" ver version))
    else if peer_digest <> digest then
      Error
        (Bus_error.Schema_mismatch
           (Printf.sprintf "peer schema digest %s... differs from this side's %s..."
              (String.sub (hex peer_digest) 0 16)
              (String.sub (hex digest) 0 16)))
    else Ok (min max_payload peer_max)

let add_frame_header buf ~type_id ~payload_len =
  Buffer.add_int32_le buf (Int32.of_int (payload_len + header_size));
  Buffer.add_uint16_le buf type_id;
  Buffer.add_uint16_le buf 0

let check_header ~limit b off =
  let len = u32 b off and type_id = Bytes.get_uint16_le b (off + 4) in
  if len < header_size || len - header_size > limit then
    Error
      (Bus_error.Transport
         (Printf.sprintf "frame length %d outside %d..%d" len header_size (header_size + limit)))
  else if type_id = 0 then Error (Bus_error.Transport "frame of type 0 (reserved for padding)")
  else Ok (len - header_size, type_id)

let digest_of_hex h =
  let n = String.length h in
  let v c =
    match c with
    | '0' .. '9' -> Some (Char.code c - 48)
    | 'a' .. 'f' -> Some (Char.code c - 87)
    | 'A' .. 'F' -> Some (Char.code c - 55)
    | _ -> None
  in
  if n <> 2 * digest_size then Error (Printf.sprintf "digest %S is not 64 hex digits" h)
  else
    let b = Bytes.create digest_size in
    let rec go i =
      if i = digest_size then Ok (Bytes.to_string b)
      else
        match (v h.[2 * i], v h.[(2 * i) + 1]) with
        | Some a, Some c ->
            Bytes.set b i (Char.chr ((a lsl 4) lor c));
            go (i + 1)
        | _ -> Error (Printf.sprintf "digest %S is not 64 hex digits" h)
    in
    go 0
