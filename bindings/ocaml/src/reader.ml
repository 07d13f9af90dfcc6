type t = {
  mutable handle : Ffi.reader option;
  name : string;
  max_payload : int;
  buf : Ffi.buffer;  (** max_payload bytes: any single frame fits. *)
  mutable batch : (Ffi.buffer * Ffi.batch) option;  (** made on first use *)
  peeked : Ffi.peek_frame;  (** filled by [myc_peek] *)
}

type frame = { type_id : int; payload : string }

let default_capacity = 1 lsl 20
let closed_error () = Ffi.error Error.Closed "reader is closed"

let close t =
  match t.handle with
  | None -> ()
  | Some h ->
      t.handle <- None;
      Ffi.reader_close h

let open_ how ?(capacity = default_capacity) ?(max_payload = 0) ?(mode = 0)
    ?schema_digest ?(readers = 0) ?untether_ns ?cursor ?(policy = Cursor.Tethered)
    ?(start = Cursor.Tail) name =
  match
    Ffi.reader_open ~how ~capacity ~max_payload ~mode ~digest:schema_digest ~readers
      ~untether_ns ~cursor ~policy ~start name
  with
  | Error _ as e -> e
  | Ok h -> (
      match Ffi.reader_stats h with
      | Error _ as e ->
          Ffi.reader_close h;
          e
      | Ok s ->
          let max_payload = s.Stats.max_payload in
          let t =
            {
              handle = Some h;
              name;
              max_payload;
              buf = Ffi.buffer max_payload;
              batch = None;
              peeked = Ffi.peek_frame ();
            }
          in
          Gc.finalise close t;
          Ok t)

let create = open_ Ffi.Create
let create_or_attach = open_ Ffi.Create_or_attach
let attach ?schema_digest ?readers ?cursor ?policy ?start name =
  open_ Ffi.Attach ?schema_digest ?readers ?cursor ?policy ?start name

let read ?(timeout_ns = -1) t =
  match t.handle with
  | None -> closed_error ()
  | Some h -> (
      let r = Ffi.read h ~timeout_ns t.buf in
      (* [t] (and with it the handle's finaliser) stays reachable until the
         call, which ran without the runtime lock, has returned. *)
      ignore (Sys.opaque_identity t);
      match r with
      | Ok (type_id, len) ->
          Ok { type_id; payload = Ffi.buffer_sub t.buf ~off:0 ~len }
      | Error _ as e -> e)

type bigstring = Ffi.bigstring

let read_into ?(timeout_ns = -1) ?(off = 0) ?len t buf =
  let n = Bigarray.Array1.dim buf in
  let len = Option.value len ~default:(n - off) in
  match t.handle with
  | None -> closed_error ()
  | Some _ when off < 0 || len < 0 || off > n - len ->
      Ffi.error Error.Bad_argument
        (Printf.sprintf "range off=%d len=%d of a %d-byte buffer" off len n)
  | Some h ->
      let r = Ffi.read_bigstring h ~timeout_ns buf ~off ~len in
      ignore (Sys.opaque_identity t);
      r

let with_peek ?(timeout_ns = -1) t f =
  match t.handle with
  | None -> closed_error ()
  | Some h -> (
      match Ffi.peek h ~timeout_ns t.peeked with
      | Error _ as e -> e
      | Ok (type_id, view) -> (
          (* Check, then release, unless [f] closed the reader (its handle
             is then freed).  The check comes first: it asks whether writers
             overwrote the frame while [f] had it (lossy readers). *)
          let finish () =
            match t.handle with
            | Some h' when h' == h ->
                let intact = Ffi.check_held h in
                Ffi.release h;
                intact
            | _ -> Ok ()
          in
          match f type_id view with
          | v -> ( match finish () with Ok () -> Ok v | Error _ as e -> e)
          | exception ex ->
              let bt = Printexc.get_raw_backtrace () in
              ignore (finish () : (unit, Error.t) result);
              Printexc.raise_with_backtrace ex bt))

let read_exn ?timeout_ns t = Error.get_exn (read ?timeout_ns t)
let try_read t = read ~timeout_ns:0 t

let batch_buffers t max_frames =
  match t.batch with
  | Some ((_, b) as bufs) when Ffi.batch_length b >= max_frames -> bufs
  | _ ->
      let bufs =
        (Ffi.buffer (max t.max_payload 65536), Ffi.batch max_frames)
      in
      t.batch <- Some bufs;
      bufs

let read_batch ?(timeout_ns = -1) ?(max_frames = 64) t =
  match t.handle with
  | None -> closed_error ()
  | Some _ when max_frames < 1 || max_frames > Ffi.u32_max ->
      Ffi.error Error.Bad_argument
        (Printf.sprintf "max_frames must be in 1..%d, not %d" Ffi.u32_max max_frames)
  | Some h -> (
      (* Buffers for no more frames than the ring can hold (one 16-byte
         header each), whatever was asked: sized before allocating. *)
      let max_frames =
        if max_frames <= 4096 then max_frames
        else
          match Ffi.reader_stats h with
          | Ok s -> max 1 (min max_frames (s.Stats.capacity / 16))
          | Error _ -> 4096
      in
      let buf, ids = batch_buffers t max_frames in
      let r = Ffi.read_batch h ~timeout_ns ~max_frames buf ids in
      ignore (Sys.opaque_identity t);
      match r with
      | Error _ as e -> e
      | Ok frames ->
          let off = ref 0 in
          Ok
            (Array.to_list frames
            |> List.map (fun (type_id, len) ->
                   let payload = Ffi.buffer_sub buf ~off:!off ~len in
                   off := !off + len;
                   { type_id; payload })))

let stats t =
  match t.handle with None -> closed_error () | Some h -> Ffi.reader_stats h

let cursor_info t =
  match t.handle with None -> closed_error () | Some h -> Ffi.reader_cursor h

let cursor_count f t = match cursor_info t with Ok c -> f c | Error _ -> 0
let lost = cursor_count (fun c -> c.Cursor.lost)
let laps = cursor_count (fun c -> c.Cursor.laps)

let max_payload t = t.max_payload
let name t = t.name

let set_spin t ns =
  match t.handle with None -> () | Some h -> Ffi.reader_set_spin h ns

let set_stuck_timeout t ns =
  match t.handle with None -> () | Some h -> Ffi.reader_set_stuck_timeout h ns
