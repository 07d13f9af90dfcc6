open Ctypes
module D = Mycelium_shm_function_description.Function_description
module T = D.Types
module F = D.Functions (Ffi_functions_generated)
module B = D.Blocking (Ffi_blocking_generated)

type writer = D.writer structure ptr
type reader = D.reader structure ptr
type how = Attach | Create | Create_or_attach

let digest_size = T.digest_size
let type_id_max = T.type_id_max
let min_capacity = Int64.to_int T.min_capacity
let max_capacity = Int64.to_int T.max_capacity
let name_max = T.name_max
let reader_slots = T.reader_slots
let cursor_name_max = T.cursor_name_max

(* The layout of struct myc_info is described with literal array sizes; fail
   at start-up rather than misread memory if the header ever changes them. *)
let () =
  if T.digest_size <> 32 || T.writer_slots <> 32 || T.cursor_name_max + 1 <> 40 then
    failwith "mycelium_shm: ring.h array sizes differ from ffi description"

let error code message = Error { Error.code; message }

(* The one place where C result codes become Error.t. Called right after the
   failing call, on the same system thread, so myc_last_error is its text. *)
let error_of_result rc =
  let open Error in
  let code =
    if rc = T.err_full then Full
    else if rc = T.err_empty then Empty
    else if rc = T.err_arg then Bad_argument
    else if rc = T.err_name then Invalid_name
    else if rc = T.err_not_found then Not_found
    else if rc = T.err_exists then Exists
    else if rc = T.err_format then Bad_format
    else if rc = T.err_corrupt then Corrupt
    else if rc = T.err_reader_busy then Reader_busy
    else if rc = T.err_schema then Schema_mismatch
    else if rc = T.err_too_large then Too_large
    else if rc = T.err_interrupted then Interrupted
    else if rc = T.err_system then System (F.last_errno ())
    else if rc = T.err_handle_busy then Handle_busy
    else if rc = T.err_closed then Closed
    else if rc = T.err_abandoned then Abandoned
    else if rc = T.err_too_many_writers then Too_many_writers
    else if rc = T.err_foreign then Foreign
    else if rc = T.err_forked then Forked
    else if rc = T.err_lapped then Lapped
    else if rc = T.err_too_many_readers then Too_many_readers
    else Unknown rc
  in
  { code; message = F.last_error () }

let check rc = if rc >= 0 then Ok () else Error (error_of_result rc)

(* ---- argument conversion: refuse what the C types cannot represent ---- *)

let u32_max = 0xFFFF_FFFF

let in_u32 what v k =
  if v < 0 || v > u32_max then
    error Error.Bad_argument (Printf.sprintf "%s must be in 0..%d, not %d" what u32_max v)
  else k (Unsigned.UInt32.of_int v)

let c_string what s k =
  if String.contains s '\000' then
    error Error.Invalid_name (Printf.sprintf "%s contains a NUL byte" what)
  else k s

(* A digest is passed as a pointer into a C array, kept reachable until the
   call has returned. *)
let with_digest digest k =
  match digest with
  | None -> k None
  | Some d when String.length d <> T.digest_size ->
      error Error.Bad_argument
        (Printf.sprintf "schema digest must be %d bytes, got %d" T.digest_size
           (String.length d))
  | Some d ->
      let arr = CArray.of_string d in
      let p = coerce (ptr char) (ptr uint8_t) (CArray.start arr) in
      let r = k (Some p) in
      ignore (Sys.opaque_identity arr);
      r

let name_check name =
  c_string "channel name" name @@ fun name -> check (F.name_check name)

let unlink name = c_string "channel name" name @@ fun name -> check (F.unlink name)

let pid_alive pid = F.pid_alive (Int32.of_int pid) Unsigned.UInt64.zero = 1

let u64 v = Unsigned.UInt64.to_int v

let stats_of s =
  let g f = u64 (getf s f) in
  {
    Stats.capacity = g T.st_capacity;
    max_payload = g T.st_max_payload;
    head = g T.st_head;
    tail = g T.st_tail;
    frames_written = g T.st_frames_written;
    bytes_written = g T.st_bytes_written;
    full_events = g T.st_full_events;
    write_timeouts = g T.st_write_timeouts;
    writer_wakes = g T.st_writer_wakes;
    frames_read = g T.st_frames_read;
    bytes_read = g T.st_bytes_read;
    padding_frames = g T.st_padding_frames;
    unblocks = g T.st_unblocks;
    reader_wakes = g T.st_reader_wakes;
    reader_sleeps = g T.st_reader_sleeps;
    takeovers = g T.st_takeovers;
  }

let inspect name =
  c_string "channel name" name @@ fun name ->
  let i = make T.info in
  match check (F.inspect name (addr i)) with
  | Error _ as e -> e
  | Ok () ->
      let digest = getf i T.in_schema_digest in
      let pids = getf i T.in_writer_pids and alive = getf i T.in_writer_alive in
      let writers =
        List.init (CArray.length pids) (fun k ->
            (Int32.to_int (CArray.get pids k), CArray.get alive k <> 0l))
        |> List.filter_map (fun (pid, alive) ->
               if pid = 0 then None else Some { Info.pid; alive })
      in
      let reader_pid = Int32.to_int (getf i T.in_reader_pid) in
      let stalled_pid = Int32.to_int (getf i T.in_stalled_pid) in
      let stalled_since_ns = u64 (getf i T.in_stalled_since_ns) in
      let hold = getf i T.in_hold_position in
      Ok
        {
          Info.stats = stats_of (getf i T.in_stats);
          schema_digest =
            String.init (CArray.length digest) (fun k ->
                Char.chr (Unsigned.UInt8.to_int (CArray.get digest k)));
          created_ns = u64 (getf i T.in_created_ns);
          file_size = u64 (getf i T.in_file_size);
          creator_pid = Int32.to_int (getf i T.in_creator_pid);
          creator_alive = getf i T.in_creator_alive <> 0l;
          reader_pid = (if reader_pid = 0 then None else Some reader_pid);
          reader_alive = getf i T.in_reader_alive <> 0l;
          format_version = Unsigned.UInt32.to_int (getf i T.in_format_version);
          writers;
          stalled_pid = (if stalled_pid = 0 then None else Some stalled_pid);
          stalled_since_ns =
            (if stalled_since_ns = 0 then None else Some stalled_since_ns);
          hold_position =
            (if Unsigned.UInt64.equal hold T.no_hold then None else Some (u64 hold));
          reader_slots = Unsigned.UInt32.to_int (getf i T.in_reader_slots);
        }

let force_unblock name =
  c_string "channel name" name @@ fun name ->
  (* C memory for the two results (allocate: outside the OCaml heap). *)
  let pid = allocate int32_t 0l and position = allocate uint64_t Unsigned.UInt64.zero in
  match check (F.force_unblock name pid position) with
  | Error _ as e -> e
  | Ok () -> Ok (Int32.to_int !@pid, u64 !@position)

let flags_of = function
  | Attach -> T.attach
  | Create -> T.create
  | Create_or_attach -> T.create_or_attach

(* [untether_ns] as the C core takes it: whole milliseconds, 0 for the
   default; at least 1 ms. *)
let untether_ms untether_ns k =
  match untether_ns with
  | None -> k Unsigned.UInt32.zero
  | Some ns when ns < 1_000_000 || ns / 1_000_000 > u32_max ->
      error Error.Bad_argument
        (Printf.sprintf "untether_ns must be from 1 ms to %d ms, not %d ns" u32_max ns)
  | Some ns -> k (Unsigned.UInt32.of_int (ns / 1_000_000))

let open_handle c_open typ ~flags ~capacity ~max_payload ~mode ~digest ~readers
    ~untether_ns name =
  c_string "channel name" name @@ fun name ->
  in_u32 "max_payload" max_payload @@ fun max_payload ->
  in_u32 "mode" mode @@ fun mode ->
  in_u32 "readers" readers @@ fun readers ->
  untether_ms untether_ns @@ fun untether ->
  if capacity < 0 then
    error Error.Bad_argument
      (Printf.sprintf "capacity must be a power of two in %d..%d, not %d" min_capacity
         max_capacity capacity)
  else
    with_digest digest @@ fun digest ->
    let out = allocate (ptr typ) (from_voidp typ null) in
    let rc =
      c_open name flags (Unsigned.UInt64.of_int capacity) max_payload mode digest readers
        untether out
    in
    if rc = T.ok then Ok !@out else Error (error_of_result rc)

let writer_open ~how ~capacity ~max_payload ~mode ~digest ~readers ~untether_ns name =
  open_handle F.writer_open D.writer ~flags:(flags_of how) ~capacity ~max_payload ~mode ~digest ~readers
    ~untether_ns name

let reader_open ~how ~capacity ~max_payload ~mode ~digest ~readers ~untether_ns ~cursor
    ~policy ~start name =
  let cursor_ok =
    match cursor with
    | Some c when String.contains c '\000' ->
        error Error.Bad_argument (Printf.sprintf "cursor name %S contains a NUL byte" c)
    | _ -> Ok ()
  in
  match cursor_ok with
  | Error _ as e -> e
  | Ok () ->
      let policy =
        Unsigned.UInt32.of_int
          (match policy with
          | Cursor.Tethered -> T.policy_tethered
          | Cursor.Lossy -> T.policy_lossy)
      in
      let flags =
        flags_of how lor (match start with Cursor.Tail -> 0 | Cursor.Oldest -> T.start_oldest)
      in
      open_handle
        (fun n f c p m d r u out -> F.reader_open n f c p m d r u cursor policy out)
        D.reader ~flags ~capacity ~max_payload ~mode ~digest ~readers ~untether_ns name

(* ---- broadcast cursors ---- *)

let cursor_of c =
  let name =
    let arr = getf c T.cu_name in
    let b = Buffer.create 40 in
    (try
       for k = 0 to CArray.length arr - 1 do
         let ch = CArray.get arr k in
         if ch = '\000' then raise Exit;
         Buffer.add_char b ch
       done
     with Exit -> ());
    Buffer.contents b
  in
  let u32 f = Unsigned.UInt32.to_int (getf c f) in
  let policy = u32 T.cu_policy in
  if policy <> T.policy_tethered && policy <> T.policy_lossy then
    error Error.Corrupt
      (Printf.sprintf "cursor slot %d has an unknown policy %d" (u32 T.cu_slot) policy)
  else
    let pid = Int32.to_int (getf c T.cu_pid) in
    Ok
      {
        Cursor.name;
        slot = u32 T.cu_slot;
        policy = (if policy = T.policy_lossy then Cursor.Lossy else Cursor.Tethered);
        durable = u32 T.cu_durable <> 0;
        tethered = u32 T.cu_tethered <> 0;
        pid = (if pid = 0 then None else Some pid);
        alive = getf c T.cu_alive <> 0l;
        position = u64 (getf c T.cu_position);
        lag = u64 (getf c T.cu_lag);
        frames_read = u64 (getf c T.cu_frames_read);
        bytes_read = u64 (getf c T.cu_bytes_read);
        lost = u64 (getf c T.cu_lost);
        laps = u64 (getf c T.cu_laps);
        untethers = u64 (getf c T.cu_untethers);
        attached_ns = u64 (getf c T.cu_attached_ns);
      }

let reader_cursor r =
  let c = make T.cursor_info in
  match check (F.reader_cursor r (addr c)) with
  | Error _ as e -> e
  | Ok () -> cursor_of c

let inspect_cursors name =
  c_string "channel name" name @@ fun name ->
  let out = CArray.make T.cursor_info T.reader_slots in
  let count = allocate uint32_t Unsigned.UInt32.zero in
  let rc =
    F.inspect_cursors name (CArray.start out) (Unsigned.UInt32.of_int T.reader_slots) count
  in
  match check rc with
  | Error _ as e -> e
  | Ok () ->
      let n = min T.reader_slots (Unsigned.UInt32.to_int !@count) in
      List.init n (fun k -> cursor_of (CArray.get out k))
      |> List.fold_left
           (fun acc c ->
             match (acc, c) with
             | Error _, _ -> acc
             | Ok l, Ok c -> Ok (c :: l)
             | Ok _, (Error _ as e) -> e)
           (Ok [])
      |> Result.map List.rev

let with_cursor name cursor f =
  c_string "channel name" name @@ fun name ->
  if String.contains cursor '\000' then
    error Error.Bad_argument (Printf.sprintf "cursor name %S contains a NUL byte" cursor)
  else check (f name cursor)

let cursor_forget name cursor = with_cursor name cursor F.cursor_forget
let cursor_register name cursor = with_cursor name cursor F.cursor_register

let check_held r = check (F.reader_check_held r)
let writer_close = F.writer_close
let reader_close = F.reader_close
let writer_set_spin w ns = F.writer_set_spin w (Int64.of_int ns)
let reader_set_spin r ns = F.reader_set_spin r (Int64.of_int ns)
let reader_set_stuck_timeout r ns = F.reader_set_stuck_timeout r (Int64.of_int ns)

let get_stats c_stats h =
  let s = make T.stats in
  match check (c_stats h (addr s)) with
  | Ok () -> Ok (stats_of s)
  | Error _ as e -> e

let writer_stats = get_stats F.writer_stats
let reader_stats = get_stats F.reader_stats

let write_nowait w ~type_id s ~off ~len =
  in_u32 "type_id" type_id @@ fun type_id ->
  in_u32 "payload length" len @@ fun len ->
  let p = ocaml_string_start s +@ off in
  check (F.write_nowait w type_id p len 0L)

let write_wait w ~type_id s ~off ~len ~timeout_ns =
  in_u32 "type_id" type_id @@ fun type_id ->
  in_u32 "payload length" len @@ fun len32 ->
  (* The stub releases the runtime lock, so the payload may not stay in the
     OCaml heap (the GC could move it): copy it into C memory first. *)
  let arr =
    CArray.of_string
      (if off = 0 && len = String.length s then s else String.sub s off len)
  in
  let p = coerce (ptr char) (ptr uint8_t) (CArray.start arr) in
  let rc = B.write_wait w type_id p len32 (Int64.of_int timeout_ns) in
  ignore (Sys.opaque_identity arr);
  check rc

let write_batch w frames ~timeout_ns =
  let n = Array.length frames in
  let bad =
    Array.find_opt (fun (id, _) -> id < 0 || id > 0xFFFF) frames
  in
  match bad with
  | Some (id, _) -> error Error.Bad_argument
        (Printf.sprintf "type_id %d is out of range 1..65535" id)
  | None when n = 0 -> error Error.Bad_argument "write_batch needs at least one frame"
  | None when n > u32_max -> error Error.Bad_argument "too many frames"
  | None -> (
      match Array.find_opt (fun (_, p) -> String.length p > u32_max) frames with
      | Some (_, p) ->
          error Error.Too_large (Printf.sprintf "payload of %d bytes" (String.length p))
      | None ->
          let ids = CArray.make uint16_t n and lens = CArray.make uint32_t n in
          Array.iteri
            (fun i (id, p) ->
              CArray.set ids i (Unsigned.UInt16.of_int id);
              CArray.set lens i (Unsigned.UInt32.of_int (String.length p)))
            frames;
          (* Outside the OCaml heap: the stub releases the runtime lock. *)
          let data = CArray.of_string (String.concat "" (Array.to_list (Array.map snd frames))) in
          let rc =
            B.write_batch w (Unsigned.UInt32.of_int n) (CArray.start ids) (CArray.start lens)
              (to_voidp (CArray.start data)) (Int64.of_int timeout_ns)
          in
          ignore (Sys.opaque_identity (ids, lens, data));
          if Int64.compare rc 0L >= 0 then Ok (Int64.to_int rc)
          else
            (* Read right after the call, on the same thread, as
               error_of_result reads myc_last_error. *)
            let written = Unsigned.UInt32.to_int (F.last_batch_written ()) in
            let e = error_of_result (Int64.to_int rc) in
            if written = 0 then Error e
            else
              Error
                {
                  e with
                  Error.message =
                    Printf.sprintf "%s (%d frame(s) of the batch were written before it)"
                      e.Error.message written;
                })

(* ---- buffers outside the OCaml heap ---- *)

type buffer = { data : char CArray.t; start : Unsigned.UInt8.t ptr }

let buffer n =
  let data = CArray.make char (max n 1) in
  { data; start = coerce (ptr char) (ptr uint8_t) (CArray.start data) }

let buffer_length b = CArray.length b.data

let buffer_sub b ~off ~len =
  string_from_ptr (CArray.start b.data +@ off) ~length:len

(* [read_to r ~timeout_ns start len] reads the next frame into the [len]
   bytes at [start], which must lie outside the OCaml heap and stay alive
   until the call has returned (the caller's [Sys.opaque_identity]). *)
let read_to r ~timeout_ns start len =
  let len = Unsigned.UInt64.of_int len in
  (* A frame already there: no runtime-lock release.  Otherwise wait in the
     stub that releases it (a timeout-0 read that finds nothing changes no
     state, so the second call starts afresh). *)
  let rc = F.read_nowait r 0L start len in
  let rc =
    if Int64.to_int rc = T.err_empty && timeout_ns <> 0 then
      B.read r (Int64.of_int timeout_ns) start len
    else rc
  in
  if Int64.compare rc 0L >= 0 then
    let v = Int64.to_int rc in
    Ok (v lsr 32, v land 0xFFFF_FFFF)
  else Error (error_of_result (Int64.to_int rc))

let read r ~timeout_ns b =
  let res = read_to r ~timeout_ns b.start (CArray.length b.data) in
  ignore (Sys.opaque_identity b);
  res

(* ---- caller-owned Bigarrays (outside the OCaml heap, never moved) ---- *)

type bigstring = (char, Bigarray.int8_unsigned_elt, Bigarray.c_layout) Bigarray.Array1.t

let bigstring_ptr ba off = coerce (ptr char) (ptr uint8_t) (bigarray_start array1 ba +@ off)

let read_bigstring r ~timeout_ns ba ~off ~len =
  let res = read_to r ~timeout_ns (bigstring_ptr ba off) len in
  ignore (Sys.opaque_identity ba);
  res

let write_bigstring w ~type_id ba ~off ~len ~timeout_ns =
  in_u32 "type_id" type_id @@ fun type_id ->
  in_u32 "payload length" len @@ fun len ->
  (* The Bigarray's data is outside the OCaml heap, so the blocking stub (which
     releases the runtime lock) reads it in place: no copy, with or without
     room in the ring. *)
  let rc = B.write_wait w type_id (bigstring_ptr ba off) len (Int64.of_int timeout_ns) in
  ignore (Sys.opaque_identity ba);
  check rc

(* ---- zero-copy views ---- *)

type peek_frame = T.frame structure

let peek_frame () = make T.frame

let peek r ~timeout_ns fr =
  let p = addr fr in
  (* As in [read]: the fast path keeps the runtime lock; a wait releases it.
     [fr] is outside the OCaml heap (a ctypes struct is malloc'd memory). *)
  let rc = F.peek_nowait r 0L p in
  let rc =
    if rc = T.err_empty && timeout_ns <> 0 then B.peek r (Int64.of_int timeout_ns) p
    else rc
  in
  ignore (Sys.opaque_identity fr);
  if rc >= 0 then
    let len = Unsigned.UInt32.to_int (getf fr T.fr_payload_len) in
    let data = coerce (ptr uint8_t) (ptr char) (getf fr T.fr_payload) in
    Ok (Unsigned.UInt16.to_int (getf fr T.fr_type_id), bigarray_of_ptr array1 len Bigarray.char data)
  else Error (error_of_result rc)

let release = F.release

type batch = { ids : Unsigned.UInt16.t CArray.t; lens : Unsigned.UInt32.t CArray.t }

let batch n = { ids = CArray.make uint16_t n; lens = CArray.make uint32_t n }
let batch_length t = CArray.length t.ids

let read_batch r ~timeout_ns ~max_frames b t =
  let n = min max_frames (CArray.length t.ids) in
  let rc =
    B.read_batch r (Unsigned.UInt32.of_int n) (Int64.of_int timeout_ns) b.start
      (Unsigned.UInt64.of_int (CArray.length b.data))
      (CArray.start t.ids) (CArray.start t.lens)
  in
  ignore (Sys.opaque_identity b);
  ignore (Sys.opaque_identity t);
  if Int64.compare rc 0L >= 0 then
    Ok
      (Array.init (Int64.to_int rc) (fun k ->
           ( Unsigned.UInt16.to_int (CArray.get t.ids k),
             Unsigned.UInt32.to_int (CArray.get t.lens k) )))
  else Error (error_of_result (Int64.to_int rc))
