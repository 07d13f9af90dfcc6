type t = { mutable handle : Ffi.writer option; name : string; max_payload : int }

let default_capacity = 1 lsl 20

let closed_error () = Ffi.error Error.Closed "writer is closed"

let close t =
  match t.handle with
  | None -> ()
  | Some h ->
      t.handle <- None;
      Ffi.writer_close h

let open_ how ?(capacity = default_capacity) ?(max_payload = 0) ?(mode = 0)
    ?schema_digest ?(readers = 0) ?untether_ns name =
  match
    Ffi.writer_open ~how ~capacity ~max_payload ~mode ~digest:schema_digest ~readers
      ~untether_ns name
  with
  | Error _ as e -> e
  | Ok h -> (
      match Ffi.writer_stats h with
      | Error _ as e ->
          Ffi.writer_close h;
          e
      | Ok s ->
          let t = { handle = Some h; name; max_payload = s.Stats.max_payload } in
          Gc.finalise close t;
          Ok t)

let create = open_ Ffi.Create
let create_or_attach = open_ Ffi.Create_or_attach
let attach ?schema_digest ?readers name = open_ Ffi.Attach ?schema_digest ?readers name

let range payload off len =
  let n = String.length payload in
  let off = Option.value off ~default:0 in
  let len = Option.value len ~default:(n - off) in
  if off < 0 || len < 0 || off > n - len then
    Ffi.error Error.Bad_argument
      (Printf.sprintf "substring off=%d len=%d of a %d-byte payload" off len n)
  else Ok (off, len)

let write ?(timeout_ns = -1) ?off ?len t ~type_id payload =
  match t.handle with
  | None -> closed_error ()
  | Some h -> (
      match range payload off len with
      | Error _ as e -> e
      | Ok (off, len) -> (
          match Ffi.write_nowait h ~type_id payload ~off ~len with
          | Error { Error.code = Error.Full; _ } when timeout_ns <> 0 ->
              let r = Ffi.write_wait h ~type_id payload ~off ~len ~timeout_ns in
              ignore (Sys.opaque_identity t);
              r
          | r -> r))

type bigstring = Ffi.bigstring

let write_bigstring ?(timeout_ns = -1) ?(off = 0) ?len t ~type_id buf =
  let n = Bigarray.Array1.dim buf in
  let len = Option.value len ~default:(n - off) in
  match t.handle with
  | None -> closed_error ()
  | Some _ when off < 0 || len < 0 || off > n - len ->
      Ffi.error Error.Bad_argument
        (Printf.sprintf "range off=%d len=%d of a %d-byte buffer" off len n)
  | Some h ->
      let r = Ffi.write_bigstring h ~type_id buf ~off ~len ~timeout_ns in
      ignore (Sys.opaque_identity t);
      r

let write_exn ?timeout_ns ?off ?len t ~type_id payload =
  Error.get_exn (write ?timeout_ns ?off ?len t ~type_id payload)

let try_write ?off ?len t ~type_id payload =
  write ~timeout_ns:0 ?off ?len t ~type_id payload

let write_batch ?(timeout_ns = -1) t frames =
  match t.handle with
  | None -> closed_error ()
  | Some h ->
      let r = Ffi.write_batch h (Array.of_list frames) ~timeout_ns in
      ignore (Sys.opaque_identity t);
      r

let stats t =
  match t.handle with None -> closed_error () | Some h -> Ffi.writer_stats h

let max_payload t = t.max_payload
let name t = t.name

let set_spin t ns =
  match t.handle with None -> () | Some h -> Ffi.writer_set_spin h ns
