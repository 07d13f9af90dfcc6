(* Broadcast channels from OCaml, against the real C core: every reader gets
   every frame, durable cursors resume without loss or duplicate, lossy
   readers count exactly what writers lapped, a view overwritten while held
   is [Lapped], a stuck tethered reader is untethered, bad input gets clear
   errors.  (The cross-process, cross-language runs are in
   tests/test_broadcast_langs.py.)  Every test unlinks its channel. *)

open Mycelium_shm

let counter = ref 0

let with_channel f =
  incr counter;
  let name = Printf.sprintf "ocaml-bc.%d.%d" (Unix.getpid ()) !counter in
  Channel.unlink_if_exists name;
  Fun.protect ~finally:(fun () -> Channel.unlink_if_exists name) (fun () -> f name)

let ok = Error.get_exn

let code_of = function
  | Ok _ -> "Ok"
  | Error e -> Error.code_name e.Error.code

let check_code what want r = Alcotest.(check string) what (Error.code_name want) (code_of r)

(* Frame [seq]: its number (8 bytes LE), then [size] bytes derived from it. *)
let payload seq size =
  let b = Bytes.create (8 + size) in
  Bytes.set_int64_le b 0 (Int64.of_int seq);
  for i = 0 to size - 1 do
    Bytes.set b (8 + i) (Char.chr ((seq * 7 + i) land 0xff))
  done;
  Bytes.to_string b

(* The sequence number of a frame made by [payload], checking its bytes. *)
let seq_of p =
  let seq = Int64.to_int (String.get_int64_le p 0) in
  Alcotest.(check string) (Printf.sprintf "frame %d intact" seq) (payload seq (String.length p - 8)) p;
  seq

let bigstring_to_string v = String.init (Bigarray.Array1.dim v) (Bigarray.Array1.get v)

let test_every_reader_gets_every_frame () =
  with_channel @@ fun name ->
  let w = ok (Writer.create ~capacity:4096 ~readers:3 name) in
  let readers = List.init 3 (fun i -> ok (Reader.attach ~cursor:(Printf.sprintf "r%d" i) name)) in
  let next = Array.make 3 0 in
  let drain_all timeout_ns =
    List.iteri
      (fun i r ->
        match Reader.read_batch ~timeout_ns r with
        | Ok frames ->
            List.iter
              (fun f ->
                Alcotest.(check int) "in order" next.(i) (seq_of f.Reader.payload);
                next.(i) <- next.(i) + 1)
              frames
        | Error { Error.code = Error.Empty; _ } -> ()
        | Error e -> Alcotest.fail (Error.to_string e))
      readers
  in
  let total = 3000 in
  for seq = 0 to total - 1 do
    let p = payload seq (seq mod 200) in
    (* A 4 KiB ring: the writer waits for the slowest tethered reader. *)
    let rec put () =
      match Writer.try_write w ~type_id:1 p with
      | Ok () -> ()
      | Error { Error.code = Error.Full; _ } ->
          drain_all 0;
          put ()
      | Error e -> Alcotest.fail (Error.to_string e)
    in
    put ()
  done;
  while Array.exists (fun n -> n < total) next do
    drain_all 1_000_000_000
  done;
  List.iter
    (fun r ->
      check_code "nothing more" Error.Empty (Reader.try_read r);
      let c = ok (Reader.cursor_info r) in
      Alcotest.(check (list int)) "frames, lost, laps, lag" [ total; 0; 0; 0 ]
        [ c.Cursor.frames_read; c.lost; c.laps; c.lag ];
      Alcotest.(check bool) "tethered, durable" true (c.tethered && c.durable && c.policy = Cursor.Tethered))
    readers;
  Alcotest.(check bool) "the writer waited" true ((ok (Writer.stats w)).Stats.full_events > 0);
  List.iter Reader.close readers;
  Writer.close w

let test_durable_cursor_resumes () =
  with_channel @@ fun name ->
  let w = ok (Writer.create ~capacity:65536 ~readers:2 name) in
  let r = ok (Reader.attach ~cursor:"books" name) in
  for seq = 0 to 99 do ok (Writer.write w ~type_id:1 (payload seq 10)) done;
  for seq = 0 to 39 do
    Alcotest.(check int) "first part" seq (seq_of (ok (Reader.read r)).Reader.payload)
  done;
  check_code "held by a live reader" Error.Reader_busy (Reader.attach ~cursor:"books" name);
  Reader.close r;
  (match ok (Channel.cursors name) with
   | [ c ] ->
       Alcotest.(check string) "name" "books" c.Cursor.name;
       Alcotest.(check (option int)) "detached" None c.pid;
       Alcotest.(check int) "kept its count" 40 c.frames_read
   | l -> Alcotest.failf "%d cursors" (List.length l));
  for seq = 100 to 149 do ok (Writer.write w ~type_id:1 (payload seq 10)) done;
  let r = ok (Reader.attach ~cursor:"books" name) in
  for seq = 40 to 149 do
    Alcotest.(check int) "resumed" seq (seq_of (ok (Reader.read r)).Reader.payload)
  done;
  check_code "no duplicate" Error.Empty (Reader.try_read r);
  (* An anonymous cursor is freed when its reader goes. *)
  Reader.close (ok (Reader.attach name));
  Alcotest.(check int) "one cursor" 1 (List.length (ok (Channel.cursors name)));
  Reader.close r;
  check_code "no such cursor" Error.Not_found (Channel.forget_cursor name "nobody");
  ok (Channel.forget_cursor name "books");
  Alcotest.(check int) "forgotten" 0 (List.length (ok (Channel.cursors name)));
  Writer.close w

let test_start_tail_or_oldest () =
  with_channel @@ fun name ->
  let w = ok (Writer.create ~readers:3 name) in
  let keeper = ok (Reader.attach ~cursor:"keeper" name) in
  for seq = 0 to 4 do ok (Writer.write w ~type_id:1 (payload seq 3)) done;
  let tail = ok (Reader.attach ~start:Cursor.Tail name) in
  let oldest = ok (Reader.attach ~start:Cursor.Oldest name) in
  ok (Writer.write w ~type_id:1 (payload 5 3));
  Alcotest.(check int) "tail: the next frame" 5 (seq_of (ok (Reader.read tail)).Reader.payload);
  check_code "tail: nothing before" Error.Empty (Reader.try_read tail);
  for seq = 0 to 5 do
    Alcotest.(check int) "oldest: all kept" seq (seq_of (ok (Reader.read oldest)).Reader.payload)
  done;
  List.iter Reader.close [ keeper; tail; oldest ];
  Writer.close w

let test_lossy_counts_exactly () =
  with_channel @@ fun name ->
  let w = ok (Writer.create ~capacity:4096 ~readers:1 name) in
  let r = ok (Reader.attach ~policy:Cursor.Lossy name) in
  let total = 2000 in
  let next = ref 0 and frames = ref 0 and gaps = ref 0 in
  let drain () =
    let rec go () =
      match Reader.try_read r with
      | Ok f ->
          let seq = seq_of f.Reader.payload in
          Alcotest.(check bool) "in order" true (seq >= !next);
          gaps := !gaps + (seq - !next);
          next := seq + 1;
          incr frames;
          go ()
      | Error { Error.code = Error.Empty; _ } -> ()
      | Error e -> Alcotest.fail (Error.to_string e)
    in
    go ()
  in
  for seq = 0 to total - 1 do
    (* A lossy reader never slows writers: no write waits. *)
    ok (Writer.try_write w ~type_id:1 (payload seq (seq mod 90)));
    if seq mod 500 = 499 then drain ()
  done;
  drain ();
  gaps := !gaps + (total - !next);
  Alcotest.(check bool) "lapped" true (Reader.laps r >= 1 && !gaps > 0);
  Alcotest.(check int) "lost = gaps" !gaps (Reader.lost r);
  Alcotest.(check int) "frames read" !frames (ok (Reader.cursor_info r)).Cursor.frames_read;
  Alcotest.(check int) "read + lost" total (!frames + Reader.lost r);
  Alcotest.(check int) "never full" 0 (ok (Writer.stats w)).Stats.full_events;
  Reader.close r;
  Writer.close w

let test_with_peek_lapped () =
  with_channel @@ fun name ->
  let w = ok (Writer.create ~capacity:4096 ~readers:2 name) in
  let lossy = ok (Reader.attach ~policy:Cursor.Lossy name) in
  ok (Writer.write w ~type_id:1 (payload 0 50));
  Alcotest.(check int) "intact view" 0
    (ok (Reader.with_peek lossy (fun _ v -> seq_of (bigstring_to_string v))));
  ok (Writer.write w ~type_id:1 (payload 1 50));
  let written = ref 2 in
  let r =
    Reader.with_peek lossy (fun _ v ->
        let seq = seq_of (bigstring_to_string v) in
        for _ = 1 to 60 do
          ok (Writer.try_write w ~type_id:1 (payload !written 100));
          incr written
        done;
        seq)
  in
  check_code "overwritten while held" Error.Lapped r;
  let frames = ref 2 in
  let rec drain () =
    match Reader.try_read lossy with
    | Ok _ ->
        incr frames;
        drain ()
    | Error _ -> ()
  in
  drain ();
  let c = ok (Reader.cursor_info lossy) in
  Alcotest.(check int) "frames read" !frames c.Cursor.frames_read;
  Alcotest.(check int) "read + lost = written" !written (c.frames_read + c.lost);
  (* An exception from f still releases the frame. *)
  ok (Writer.write w ~type_id:1 (payload !written 5));
  (match Reader.with_peek lossy (fun _ _ -> failwith "boom") with
   | _ -> Alcotest.fail "no exception"
   | exception Failure _ -> ());
  check_code "released" Error.Empty (Reader.try_read lossy);
  Reader.close lossy;
  (* A tethered reader's view is never overwritten: the ring fills instead. *)
  let tethered = ok (Reader.attach name) in
  ok (Writer.write w ~type_id:1 (payload 0 50));
  let writes =
    ok
      (Reader.with_peek tethered (fun _ v ->
           ignore (seq_of (bigstring_to_string v));
           let n = ref 0 in
           while Result.is_ok (Writer.try_write w ~type_id:1 (payload 1 100)) do incr n done;
           !n))
  in
  Alcotest.(check bool) "writers held back" true (writes < 40);
  Reader.close tethered;
  Writer.close w

let test_untether () =
  with_channel @@ fun name ->
  let w = ok (Writer.create ~capacity:4096 ~readers:2 ~untether_ns:100_000_000 name) in
  let t0 = Unix.gettimeofday () in (* before the reader's last sign of life *)
  let stuck = ok (Reader.attach ~cursor:"stuck" name) in
  for seq = 0 to 499 do
    ok (Writer.write ~timeout_ns:10_000_000_000 w ~type_id:1 (payload seq 100))
  done;
  Alcotest.(check bool) "the writer waited for the window" true (Unix.gettimeofday () -. t0 >= 0.09);
  let c = ok (Reader.cursor_info stuck) in
  Alcotest.(check bool) "untethered" true (c.Cursor.untethers >= 1 && not c.tethered);
  let frames = ref 0 in
  while Result.is_ok (Reader.try_read stuck) do incr frames done;
  Alcotest.(check bool) "lost some" true (Reader.lost stuck > 0);
  Alcotest.(check int) "read + lost" 500 (!frames + Reader.lost stuck);
  Alcotest.(check bool) "tethered again" true (ok (Reader.cursor_info stuck)).Cursor.tethered;
  Reader.close stuck;
  Writer.close w

let test_single_reader_and_bad_input () =
  with_channel @@ fun name ->
  let r = ok (Reader.create name) in
  Alcotest.(check int) "no slots" 0 (ok (Channel.inspect name)).Info.reader_slots;
  check_code "no cursor" Error.Bad_argument (Reader.cursor_info r);
  Alcotest.(check (pair int int)) "lost, laps" (0, 0) (Reader.lost r, Reader.laps r);
  Alcotest.(check int) "no cursors" 0 (List.length (ok (Channel.cursors name)));
  Reader.close r;
  check_code "a cursor name" Error.Bad_argument (Reader.attach ~cursor:"x" name);
  check_code "readers on attach" Error.Bad_argument (Writer.attach ~readers:2 name);
  Channel.unlink_if_exists name;
  check_code "too many readers" Error.Too_many_readers
    (Writer.create ~readers:(Channel.max_readers + 1) name);
  check_code "untether below 1 ms" Error.Bad_argument
    (Writer.create ~readers:2 ~untether_ns:10_000 name);
  check_code "negative readers" Error.Bad_argument (Writer.create ~readers:(-1) name);
  let w = ok (Writer.create ~readers:2 name) in
  Alcotest.(check int) "slots" 2 (ok (Channel.inspect name)).Info.reader_slots;
  List.iter
    (fun bad -> check_code (Printf.sprintf "cursor %S" bad) Error.Bad_argument (Reader.attach ~cursor:bad name))
    [ ""; "a\001b"; "nul\000byte"; String.make (Channel.cursor_name_max + 1) 'x' ];
  let a = ok (Reader.attach ~cursor:(String.make Channel.cursor_name_max 'y') name) in
  let b = ok (Reader.attach name) in
  check_code "every slot taken" Error.Too_many_readers (Reader.attach ~cursor:"third" name);
  Alcotest.(check string) "kind" "TooManyReaders" (Error.kind_name Error.Too_many_readers);
  check_code "unknown policy" Error.Bad_argument (Cursor.policy_of_string "eager");
  Alcotest.(check bool) "policy names" true
    (Cursor.policy_of_string (Cursor.policy_name Cursor.Lossy) = Ok Cursor.Lossy);
  Reader.close a;
  Reader.close b;
  Writer.close w

(* The example of README.md ("Broadcast channels"), as written there but
   for the channel name, plus checks of what it prints. *)
let test_readme_example () =
  with_channel @@ fun name ->
  let open Printf in
  let lines = ref [] in
  let print_endline l = lines := l :: !lines in
  let rec show = function
    | [] -> ()
    | c :: rest ->
        print_endline
          (sprintf "%S: %d frames read, %d bytes behind" c.Cursor.name c.Cursor.frames_read c.Cursor.lag);
        show rest
  in
  let w = Writer.create ~readers:4 ~untether_ns:1_000_000_000 name |> Error.get_exn in
  let books = Reader.attach ~cursor:"audit" name |> Error.get_exn in
  let ui = Reader.attach ~policy:Cursor.Lossy name |> Error.get_exn in
  Writer.write_exn w ~type_id:1 "to every reader";
  print_endline (Reader.read_exn books).Reader.payload;
  (match Reader.with_peek ui (fun type_id _view -> type_id) with
   | Ok type_id -> print_endline (sprintf "ui: a frame of type %d, lost %d frames" type_id (Reader.lost ui))
   | Error { Error.code = Error.Lapped; _ } -> print_endline "ui was lapped"
   | Error e -> prerr_endline (Error.to_string e));
  Reader.close books;
  Writer.write_exn w ~type_id:1 "sent while away";
  let books = Reader.attach ~cursor:"audit" name |> Error.get_exn in
  print_endline (Reader.read_exn books).Reader.payload;
  show (Channel.cursors name |> Error.get_exn);
  Reader.close books;
  Reader.close ui;
  Error.get_exn (Channel.forget_cursor name "audit");
  Writer.close w;
  Alcotest.(check (list string)) "printed"
    [
      "to every reader";
      "ui: a frame of type 1, lost 0 frames";
      "sent while away";
      "\"audit\": 2 frames read, 0 bytes behind";
      "\"\": 1 frames read, 32 bytes behind";
    ]
    (List.rev !lines);
  Alcotest.(check int) "forgotten" 0 (List.length (ok (Channel.cursors name)))

let () =
  Alcotest.run "broadcast"
    [
      ( "broadcast",
        [
          Alcotest.test_case "every tethered reader gets every frame" `Quick
            test_every_reader_gets_every_frame;
          Alcotest.test_case "a durable cursor resumes" `Quick test_durable_cursor_resumes;
          Alcotest.test_case "start at the tail or the oldest frame" `Quick test_start_tail_or_oldest;
          Alcotest.test_case "a lossy reader counts exactly what it lost" `Quick
            test_lossy_counts_exactly;
          Alcotest.test_case "with_peek reports Lapped" `Quick test_with_peek_lapped;
          Alcotest.test_case "a stuck tethered reader is untethered" `Quick test_untether;
          Alcotest.test_case "single-reader channels and bad input" `Quick
            test_single_reader_and_bad_input;
          Alcotest.test_case "the README example" `Quick test_readme_example;
        ] );
    ]
