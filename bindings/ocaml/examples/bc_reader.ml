(* A broadcast reader checking what tests/workers.py bc-writer writes: the
   OCaml twin of workers.py bc-reader (and of the Rust bc_reader example),
   used by the cross-language broadcast tests (tests/test_broadcast_langs.py).

     bc_reader.exe CHANNEL CURSOR POLICY TOTAL IDLE_S [--mode batch|peek]

   Attaches to the broadcast channel CHANNEL with the durable cursor CURSOR
   and POLICY (tethered or lossy), prints "ready", then reads until TOTAL
   frames were seen or nothing came for IDLE_S seconds: by copy, 256 frames
   per call (--mode batch, the default), or zero-copy one frame at a time
   with Reader.with_peek (--mode peek; a view overwritten while held is
   counted in lapped_views).  Frame SEQ of writer W has type id 1 + W and the
   payload W (u32 LE) | SEQ (u64 LE) | pattern[start .. start + size], the
   pattern being the bytes 0..255 repeated 17 times and
   start = (31 W + 7 SEQ) mod 251.  Prints one JSON line: frames (intact
   frames), gaps (frames skipped per the sequence numbers), bad (corrupt or
   out of order), lost, laps and untethers (the reader's own counts),
   lapped_views. *)

open Mycelium_shm
module C = Example_common

let usage_text = "bc_reader CHANNEL CURSOR POLICY TOTAL IDLE_S [--mode batch|peek]"

(* [verdict type_id len get] is [Some (writer, seq)] if the frame (its byte
   [i] is [get i]) is intact, [None] otherwise. *)
let verdict type_id len get =
  if len < 12 then None
  else
    let u8 i = Char.code (get i) in
    let le off n =
      let v = ref 0 in
      for k = n - 1 downto 0 do
        v := (!v lsl 8) lor u8 (off + k)
      done;
      !v
    in
    let writer = le 0 4 and seq = le 4 8 in
    let start = ((writer * 31) + (seq * 7)) mod 251 in
    let size = len - 12 in
    let rec body i = i >= size || (u8 (12 + i) = (start + i) land 0xff && body (i + 1)) in
    if type_id = writer + 1 && start + size <= 256 * 17 && body 0 then Some (writer, seq) else None

type tally = {
  next : (int, int) Hashtbl.t;
  mutable frames : int;
  mutable gaps : int;
  mutable bad : int;
}

let count t = function
  | None -> t.bad <- t.bad + 1
  | Some (writer, seq) ->
      let expect = Option.value (Hashtbl.find_opt t.next writer) ~default:0 in
      if seq < expect then t.bad <- t.bad + 1;
      t.gaps <- t.gaps + max 0 (seq - expect);
      Hashtbl.replace t.next writer (seq + 1);
      t.frames <- t.frames + 1

let () =
  let args = C.parse usage_text in
  let name, cursor, policy, idle_s =
    match args.C.positional with
    | [ name; cursor; policy; _; idle ] -> (
        match (Cursor.policy_of_string policy, float_of_string_opt idle) with
        | Ok p, Some idle -> (name, cursor, p, idle)
        | Error e, _ -> C.die "policy" e
        | _, None -> C.usage usage_text)
    | _ -> C.usage usage_text
  in
  let total = C.positional_int args 3 usage_text in
  let timeout_ns = int_of_float (idle_s *. 1e9) in
  let peek =
    match C.opt args "mode" with
    | None | Some "batch" -> false
    | Some "peek" -> true
    | Some _ -> C.usage usage_text
  in
  let r =
    match Reader.attach ~cursor ~policy name with Ok r -> r | Error e -> C.die "attach" e
  in
  print_endline "ready";
  let t = { next = Hashtbl.create 8; frames = 0; gaps = 0; bad = 0 } in
  let lapped_views = ref 0 in
  let finished = ref false in
  while (not !finished) && t.frames < total do
    if peek then
      (* Checked in place; the verdict counts only if the view was not
         overwritten meanwhile. *)
      match
        Reader.with_peek ~timeout_ns r (fun type_id v ->
            verdict type_id (Bigarray.Array1.dim v) (Bigarray.Array1.get v))
      with
      | Ok v -> count t v
      | Error { Error.code = Error.Empty; _ } -> finished := true
      | Error { Error.code = Error.Lapped; _ } -> incr lapped_views
      | Error e -> C.die "peek" e
    else
      match Reader.read_batch ~timeout_ns ~max_frames:256 r with
      | Ok frames ->
          List.iter
            (fun f ->
              let p = f.Reader.payload in
              count t (verdict f.Reader.type_id (String.length p) (String.get p)))
            frames
      | Error { Error.code = Error.Empty; _ } -> finished := true
      | Error e -> C.die "read" e
  done;
  let c = match Reader.cursor_info r with Ok c -> c | Error e -> C.die "cursor_info" e in
  Printf.printf
    "{\"frames\": %d, \"gaps\": %d, \"bad\": %d, \"lost\": %d, \"laps\": %d, \"untethers\": %d, \
     \"lapped_views\": %d}\n%!"
    t.frames t.gaps t.bad c.Cursor.lost c.Cursor.laps c.Cursor.untethers !lapped_views;
  Reader.close r
