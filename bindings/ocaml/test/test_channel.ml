(* Unit tests of the channel API (Writer, Reader, Channel, Error) against the
   real C core.  Every test uses its own channel name and unlinks it, even on
   failure. *)

open Mycelium_shm

let counter = ref 0

(* [with_channel f] runs [f name] with a fresh channel name, then unlinks it. *)
let with_channel f =
  incr counter;
  let name = Printf.sprintf "ocaml-test.%d.%d" (Unix.getpid ()) !counter in
  Channel.unlink_if_exists name;
  Fun.protect ~finally:(fun () -> Channel.unlink_if_exists name) (fun () -> f name)

let ok = Error.get_exn

let code_of = function
  | Ok _ -> "Ok"
  | Error e -> Error.code_name e.Error.code

let check_code what want r = Alcotest.(check string) what (Error.code_name want) (code_of r)

let frame = Alcotest.testable
    (fun ppf f -> Format.fprintf ppf "{type_id=%d; payload=%S}" f.Reader.type_id f.Reader.payload)
    ( = )

let test_roundtrip () =
  with_channel @@ fun name ->
  let r = ok (Reader.create ~capacity:4096 name) in
  let w = ok (Writer.attach name) in
  ok (Writer.write w ~type_id:7 "hello");
  ok (Writer.try_write w ~type_id:65535 "");
  ok (Writer.write w ~type_id:1 ~off:2 ~len:3 "abcdefg");
  Alcotest.check frame "first" { Reader.type_id = 7; payload = "hello" } (ok (Reader.read r));
  Alcotest.check frame "empty payload" { Reader.type_id = 65535; payload = "" } (ok (Reader.try_read r));
  Alcotest.check frame "substring" { Reader.type_id = 1; payload = "cde" } (ok (Reader.read ~timeout_ns:0 r));
  check_code "nothing left" Error.Empty (Reader.try_read r);
  check_code "timeout" Error.Empty (Reader.read ~timeout_ns:1_000_000 r);
  let s = ok (Reader.stats r) in
  Alcotest.(check int) "frames written" 3 s.Stats.frames_written;
  Alcotest.(check int) "frames read" 3 s.Stats.frames_read;
  Alcotest.(check int) "bytes read" 8 s.Stats.bytes_read;
  Alcotest.(check int) "capacity" 4096 s.Stats.capacity;
  Writer.close w;
  Reader.close r

let test_binary_and_large () =
  with_channel @@ fun name ->
  let w = ok (Writer.create ~capacity:65536 ~max_payload:10000 name) in
  let r = ok (Reader.attach name) in
  Alcotest.(check int) "max payload" 10000 (Writer.max_payload w);
  Alcotest.(check int) "reader max payload" 10000 (Reader.max_payload r);
  let big = String.init 10000 (fun i -> Char.chr (i land 0xff)) in
  ok (Writer.write w ~type_id:2 big);
  Alcotest.check frame "10000 bytes" { Reader.type_id = 2; payload = big } (ok (Reader.read r));
  check_code "too large" Error.Too_large (Writer.write w ~type_id:2 (big ^ "x"));
  check_code "type id 0" Error.Bad_argument (Writer.write w ~type_id:0 "x");
  check_code "type id too big" Error.Bad_argument (Writer.write w ~type_id:65536 "x");
  check_code "negative type id" Error.Bad_argument (Writer.write w ~type_id:(-1) "x");
  check_code "bad substring" Error.Bad_argument (Writer.write w ~type_id:1 ~off:3 ~len:5 "abcd");
  Writer.close w;
  Reader.close r

let test_open_errors () =
  with_channel @@ fun name ->
  check_code "attach missing" Error.Not_found (Writer.attach name);
  check_code "reader attach missing" Error.Not_found (Reader.attach name);
  check_code "slash" Error.Invalid_name (Writer.create "a/b");
  check_code "dotdot" Error.Invalid_name (Reader.create "a..b");
  check_code "empty" Error.Invalid_name (Channel.check_name "");
  check_code "NUL" Error.Invalid_name (Writer.create "a\000b");
  check_code "too long" Error.Invalid_name (Writer.create (String.make (Channel.name_max + 1) 'a'));
  check_code "capacity not a power of two" Error.Bad_argument (Writer.create ~capacity:5000 name);
  check_code "capacity too small" Error.Bad_argument (Writer.create ~capacity:512 name);
  check_code "negative capacity" Error.Bad_argument (Writer.create ~capacity:(-1) name);
  check_code "max_payload above u32" Error.Bad_argument (Writer.create ~max_payload:(1 lsl 33) name);
  Alcotest.(check bool) "nothing created" false (Channel.exists name);
  let w = ok (Writer.create name) in
  check_code "create twice" Error.Exists (Writer.create name);
  check_code "reader create existing" Error.Exists (Reader.create name);
  let w2 = ok (Writer.create_or_attach name) in
  let r = ok (Reader.attach name) in
  check_code "second reader" Error.Reader_busy (Reader.attach name);
  Reader.close r;
  let r2 = ok (Reader.attach name) in
  Reader.close r2;
  Writer.close w2;
  Writer.close w;
  ok (Channel.unlink name);
  check_code "unlinked" Error.Not_found (Channel.unlink name);
  check_code "attach unlinked" Error.Not_found (Writer.attach name)

let test_schema () =
  with_channel @@ fun name ->
  let d = Trading.schema_digest in
  let other = String.map (fun c -> Char.chr (Char.code c lxor 1)) d in
  let w = ok (Writer.create ~schema_digest:d name) in
  check_code "writer, other schema" Error.Schema_mismatch (Writer.attach ~schema_digest:other name);
  check_code "reader, other schema" Error.Schema_mismatch (Reader.attach ~schema_digest:other name);
  check_code "digest of 31 bytes" Error.Bad_argument (Writer.attach ~schema_digest:"short" name);
  let r = ok (Reader.attach ~schema_digest:d name) in
  let w2 = ok (Writer.attach name) in
  let i = ok (Channel.inspect name) in
  Alcotest.(check string) "inspected digest" d i.Info.schema_digest;
  Alcotest.(check bool) "has schema" true (Info.has_schema i);
  Alcotest.(check int) "creator" (Unix.getpid ()) i.Info.creator_pid;
  Alcotest.(check (option int)) "reader" (Some (Unix.getpid ())) i.Info.reader_pid;
  Alcotest.(check bool) "writers registered" true (List.length i.Info.writers >= 1);
  List.iter (fun wr -> Alcotest.(check bool) "writer alive" true wr.Info.alive) i.Info.writers;
  Reader.close r;
  Writer.close w2;
  Writer.close w

let test_full () =
  with_channel @@ fun name ->
  let w = ok (Writer.create ~capacity:1024 name) in
  let r = ok (Reader.attach name) in
  let payload = String.make 100 'x' in
  let rec fill n =
    match Writer.try_write w ~type_id:1 payload with
    | Ok () -> fill (n + 1)
    | Error { Error.code = Error.Full; _ } -> n
    | Error e -> Alcotest.failf "unexpected %s" (Error.to_string e)
  in
  let n = fill 0 in
  Alcotest.(check bool) "some frames fit" true (n >= 5 && n <= 10);
  check_code "timed write" Error.Full (Writer.write ~timeout_ns:2_000_000 w ~type_id:1 payload);
  let s = ok (Writer.stats w) in
  Alcotest.(check bool) "full events" true (s.Stats.full_events >= 2);
  Alcotest.(check int) "write timeouts" 1 s.Stats.write_timeouts;
  for _ = 1 to n do
    Alcotest.(check int) "drained" 100 (String.length (ok (Reader.read ~timeout_ns:0 r)).Reader.payload)
  done;
  check_code "empty again" Error.Empty (Reader.try_read r);
  Writer.close w;
  Reader.close r

let test_batch () =
  with_channel @@ fun name ->
  let r = ok (Reader.create name) in
  let w = ok (Writer.attach name) in
  for i = 1 to 10 do
    ok (Writer.write w ~type_id:i (string_of_int i))
  done;
  let got = ok (Reader.read_batch ~max_frames:4 r) in
  Alcotest.(check (list string)) "first four" [ "1"; "2"; "3"; "4" ]
    (List.map (fun f -> f.Reader.payload) got);
  let got = ok (Reader.read_batch r) in
  Alcotest.(check (list int)) "the rest, in order" [ 5; 6; 7; 8; 9; 10 ]
    (List.map (fun f -> f.Reader.type_id) got);
  check_code "empty batch" Error.Empty (Reader.read_batch ~timeout_ns:0 r);
  check_code "max_frames 0" Error.Bad_argument (Reader.read_batch ~max_frames:0 r);
  Writer.close w;
  Reader.close r

let test_write_batch () =
  with_channel @@ fun name ->
  let r = ok (Reader.create ~capacity:1024 name) in
  let w = ok (Writer.attach name) in
  let n = ok (Writer.write_batch w [ (1, "a"); (2, ""); (3, "ccc") ]) in
  Alcotest.(check int) "all three" 3 n;
  Alcotest.(check (list (pair int string))) "in order"
    [ (1, "a"); (2, ""); (3, "ccc") ]
    (List.map (fun f -> (f.Reader.type_id, f.Reader.payload)) (ok (Reader.read_batch r)));
  (* More than fits: the longest prefix goes in. *)
  let big = List.init 20 (fun i -> (i + 1, String.make 100 'z')) in
  let k = ok (Writer.write_batch ~timeout_ns:0 w big) in
  Alcotest.(check bool) "a prefix" true (k >= 1 && k < 20);
  check_code "full" Error.Full (Writer.write_batch ~timeout_ns:0 w big);
  check_code "empty batch" Error.Bad_argument (Writer.write_batch w []);
  check_code "type id out of range" Error.Bad_argument (Writer.write_batch w [ (70000, "") ]);
  Writer.close w;
  Reader.close r

let bigstring_of_string s =
  let b = Bigarray.Array1.create Bigarray.char Bigarray.c_layout (String.length s) in
  String.iteri (Bigarray.Array1.set b) s;
  b

let string_of_bigstring ?(off = 0) ?len b =
  let len = Option.value len ~default:(Bigarray.Array1.dim b - off) in
  String.init len (fun i -> Bigarray.Array1.get b (off + i))

let test_read_into () =
  with_channel @@ fun name ->
  let r = ok (Reader.create ~capacity:65536 ~max_payload:10000 name) in
  let w = ok (Writer.attach name) in
  let buf = bigstring_of_string (String.make 16 '.') in
  ok (Writer.write w ~type_id:7 "hello");
  Alcotest.(check (pair int int)) "type id and length" (7, 5) (ok (Reader.read_into r buf));
  Alcotest.(check string) "payload at 0, rest untouched" "hello..........."
    (string_of_bigstring buf);
  ok (Writer.write w ~type_id:8 "abc");
  Alcotest.(check (pair int int)) "at an offset" (8, 3) (ok (Reader.read_into ~off:10 r buf));
  Alcotest.(check string) "payload at 10" "hello.....abc..." (string_of_bigstring buf);
  ok (Writer.write w ~type_id:9 "");
  Alcotest.(check (pair int int)) "empty payload" (9, 0) (ok (Reader.read_into ~timeout_ns:0 r buf));
  (* A frame longer than the room is left in the ring, not lost. *)
  ok (Writer.write w ~type_id:10 "0123456789");
  check_code "too small" Error.Bad_argument (Reader.read_into ~off:8 r buf);
  check_code "len too small" Error.Bad_argument (Reader.read_into ~len:9 r buf);
  Alcotest.(check (pair int int)) "then read whole" (10, 10) (ok (Reader.read_into ~len:10 r buf));
  Alcotest.(check string) "payload" "0123456789" (string_of_bigstring ~len:10 buf);
  check_code "nothing left" Error.Empty (Reader.read_into ~timeout_ns:0 r buf);
  check_code "timeout" Error.Empty (Reader.read_into ~timeout_ns:1_000_000 r buf);
  check_code "off past the end" Error.Bad_argument (Reader.read_into ~off:17 r buf);
  check_code "negative off" Error.Bad_argument (Reader.read_into ~off:(-1) r buf);
  check_code "len past the end" Error.Bad_argument (Reader.read_into ~off:8 ~len:9 r buf);
  let s = ok (Reader.stats r) in
  Alcotest.(check int) "frames read" 4 s.Stats.frames_read;
  Alcotest.(check int) "bytes read" 18 s.Stats.bytes_read;
  (* Mixed with read: frames stay in order. *)
  ok (Writer.write w ~type_id:1 "x");
  ok (Writer.write w ~type_id:2 "yy");
  Alcotest.check frame "read" { Reader.type_id = 1; payload = "x" } (ok (Reader.read r));
  Alcotest.(check (pair int int)) "read_into" (2, 2) (ok (Reader.read_into r buf));
  Writer.close w;
  Reader.close r;
  check_code "after close" Error.Closed (Reader.read_into r buf)

let test_with_peek () =
  with_channel @@ fun name ->
  with_channel @@ fun name2 ->
  let r = ok (Reader.create ~capacity:4096 name) in
  let w = ok (Writer.attach name) in
  let view_contents id v = (id, string_of_bigstring v) in
  ok (Writer.write w ~type_id:7 "hello");
  ok (Writer.write w ~type_id:8 "");
  Alcotest.(check (pair int string)) "in place" (7, "hello") (ok (Reader.with_peek r view_contents));
  Alcotest.(check (pair int string)) "empty payload" (8, "")
    (ok (Reader.with_peek ~timeout_ns:0 r view_contents));
  let called = ref false in
  check_code "nothing left" Error.Empty (Reader.with_peek ~timeout_ns:0 r (fun _ _ -> called := true));
  check_code "timeout" Error.Empty (Reader.with_peek ~timeout_ns:1_000_000 r (fun _ _ -> called := true));
  Alcotest.(check bool) "f not called without a frame" false !called;
  let s = ok (Reader.stats r) in
  Alcotest.(check int) "frames read" 2 s.Stats.frames_read;
  Alcotest.(check int) "bytes read" 5 s.Stats.bytes_read;
  (* An exception from f still consumes the frame. *)
  ok (Writer.write w ~type_id:1 "boom");
  ok (Writer.write w ~type_id:2 "next");
  (match Reader.with_peek r (fun _ _ -> failwith "in f") with
  | _ -> Alcotest.fail "no exception"
  | exception Failure m -> Alcotest.(check string) "raised" "in f" m);
  Alcotest.check frame "the frame after" { Reader.type_id = 2; payload = "next" } (ok (Reader.read r));
  (* Forwarding the view to another channel: one copy, ring to ring. *)
  let r2 = ok (Reader.create ~capacity:4096 name2) in
  let w2 = ok (Writer.attach name2) in
  ok (Writer.write w ~type_id:9 "forward me");
  ok (Reader.with_peek r (fun type_id v -> Error.get_exn (Writer.write_bigstring w2 ~type_id v)));
  Alcotest.check frame "forwarded" { Reader.type_id = 9; payload = "forward me" } (ok (Reader.read r2));
  (* f may close the reader. *)
  ok (Writer.write w ~type_id:3 "last");
  Alcotest.(check int) "closed inside f" 3 (ok (Reader.with_peek r (fun id _ -> Reader.close r; id)));
  check_code "after close" Error.Closed (Reader.with_peek r view_contents);
  Writer.close w;
  Writer.close w2;
  Reader.close r2

(* The point of read_into, with_peek and write_bigstring: moving large frames puts
   nothing on the major heap (a string per frame would, and drive major
   collections and compactions). *)
let test_bigstring_no_major_alloc () =
  with_channel @@ fun name ->
  let size = 16384 and frames = 200 in
  let r = ok (Reader.create ~capacity:(1 lsl 20) ~max_payload:size name) in
  let w = ok (Writer.attach name) in
  let payload = bigstring_of_string (String.init size (fun i -> Char.chr (i land 0xff))) in
  let buf = Bigarray.Array1.create Bigarray.char Bigarray.c_layout size in
  let before = (Gc.quick_stat ()).Gc.major_words in
  for i = 1 to frames do
    ok (Writer.write_bigstring w ~type_id:4 payload);
    if i land 1 = 0 then ignore (ok (Reader.read_into r buf))
    else ignore (ok (Reader.with_peek r (fun _ v -> Bigarray.Array1.dim v)))
  done;
  let major = (Gc.quick_stat ()).Gc.major_words -. before in
  Alcotest.(check bool)
    (Printf.sprintf "major words %.0f below one frame (%d)" major (size / 8))
    true
    (major < float_of_int (size / 8));
  Alcotest.(check bool) "payload intact" true
    (string_of_bigstring buf = string_of_bigstring payload);
  Writer.close w;
  Reader.close r

let test_write_bigstring () =
  with_channel @@ fun name ->
  let r = ok (Reader.create ~capacity:1024 name) in
  let w = ok (Writer.attach name) in
  let b = bigstring_of_string "abcdefg" in
  ok (Writer.write_bigstring w ~type_id:5 b);
  ok (Writer.write_bigstring w ~type_id:6 ~off:2 ~len:3 b);
  ok (Writer.write_bigstring ~timeout_ns:0 w ~type_id:7 ~off:7 b);
  Alcotest.check frame "whole" { Reader.type_id = 5; payload = "abcdefg" } (ok (Reader.read r));
  Alcotest.check frame "range" { Reader.type_id = 6; payload = "cde" } (ok (Reader.read r));
  Alcotest.check frame "empty" { Reader.type_id = 7; payload = "" } (ok (Reader.read r));
  check_code "bad range" Error.Bad_argument (Writer.write_bigstring w ~type_id:1 ~off:3 ~len:5 b);
  check_code "negative off" Error.Bad_argument (Writer.write_bigstring w ~type_id:1 ~off:(-1) b);
  check_code "type id 0" Error.Bad_argument (Writer.write_bigstring w ~type_id:0 b);
  check_code "type id too big" Error.Bad_argument (Writer.write_bigstring w ~type_id:65536 b);
  (* Fill the ring: a write that may not wait fails with Full, and one with a
     short timeout gives up. *)
  let big = bigstring_of_string (String.make 100 'z') in
  let rec fill n =
    match Writer.write_bigstring ~timeout_ns:0 w ~type_id:1 big with
    | Ok () -> fill (n + 1)
    | Error { Error.code = Error.Full; _ } -> n
    | Error e -> Alcotest.failf "fill: %s" (Error.to_string e)
  in
  Alcotest.(check bool) "some fitted" true (fill 0 > 0);
  check_code "full" Error.Full (Writer.write_bigstring ~timeout_ns:0 w ~type_id:1 big);
  check_code "full after a wait" Error.Full (Writer.write_bigstring ~timeout_ns:1_000_000 w ~type_id:1 big);
  Writer.close w;
  Reader.close r;
  check_code "after close" Error.Closed (Writer.write_bigstring w ~type_id:1 b)

let test_closed () =
  with_channel @@ fun name ->
  let w = ok (Writer.create name) in
  let r = ok (Reader.attach name) in
  Writer.close w;
  Writer.close w;
  Reader.close r;
  Reader.close r;
  check_code "write after close" Error.Closed (Writer.write w ~type_id:1 "x");
  check_code "stats after close" Error.Closed (Writer.stats w);
  check_code "read after close" Error.Closed (Reader.read r);
  check_code "batch after close" Error.Closed (Reader.read_batch r);
  (match Writer.write_exn w ~type_id:1 "x" with
  | () -> Alcotest.fail "no exception"
  | exception Error.Mycelium_error { Error.code = Error.Closed; _ } -> ());
  Alcotest.(check string) "message" "MYC_ERR_CLOSED: reader is closed"
    (match Reader.read r with Error e -> Error.to_string e | Ok _ -> "")

(* The bad-input table of tests/test_bad_inputs.py, as far as OCaml's types
   leave anything to check: the error code, and a message naming the
   argument. *)
let check_named what want names r =
  check_code what want r;
  match r with
  | Ok _ -> ()
  | Error e ->
      let m = e.Error.message in
      let found =
        let ln = String.length names and lm = String.length m in
        let rec go i = i + ln <= lm && (String.sub m i ln = names || go (i + 1)) in
        go 0
      in
      if not found then Alcotest.failf "%s: %S does not name %S" what m names

let test_bad_inputs () =
  with_channel @@ fun name ->
  List.iter
    (fun (what, capacity, max_payload, mode, names) ->
      check_named what Error.Bad_argument names
        (Writer.create ~capacity ~max_payload ~mode name);
      check_named ("reader " ^ what) Error.Bad_argument names
        (Reader.create ~capacity ~max_payload ~mode name))
    [
      ("capacity 0", 0, 0, 0o600, "capacity");
      ("capacity 1000", 1000, 0, 0o600, "capacity");
      ("capacity 2^40", 1 lsl 40, 0, 0o600, "capacity");
      ("capacity max_int", max_int, 0, 0o600, "capacity");
      ("capacity negative", -1, 0, 0o600, "capacity");
      ("capacity min_int", min_int, 0, 0o600, "capacity");
      ("max_payload negative", 4096, -1, 0o600, "max_payload");
      ("max_payload 2^40", 4096, 1 lsl 40, 0o600, "max_payload");
      ("max_payload above the limit", 4096, 2033, 0o600, "max_payload");
      ("mode negative", 4096, 0, -1, "mode");
      ("mode 0o1000", 4096, 0, 0o1000, "mode");
      ("mode 2^40", 4096, 0, 1 lsl 40, "mode");
    ];
  Alcotest.(check bool) "nothing created" false (Channel.exists name);
  let w = ok (Writer.create ~capacity:4096 ~max_payload:512 name) in
  let r = ok (Reader.attach name) in
  List.iter
    (fun type_id ->
      check_named (Printf.sprintf "type_id %d" type_id) Error.Bad_argument "type_id"
        (Writer.write w ~type_id "x"))
    [ 0; -1; 65536; 1 lsl 40; max_int; min_int ];
  check_named "batch type_id" Error.Bad_argument "type_id" (Writer.write_batch w [ (1, "a"); (0, "b") ]);
  check_named "payload too large" Error.Too_large "513" (Writer.write w ~type_id:1 (String.make 513 'x'));
  List.iter
    (fun max_frames ->
      check_named (Printf.sprintf "max_frames %d" max_frames) Error.Bad_argument "max_frames"
        (Reader.read_batch ~timeout_ns:0 ~max_frames r))
    [ 0; -1; 1 lsl 40; max_int; min_int ];
  (* A count the ring cannot hold is trimmed before allocating, not refused. *)
  check_code "max_frames 2^31 on an empty ring" Error.Empty
    (Reader.read_batch ~timeout_ns:0 ~max_frames:(1 lsl 31) r);
  ok (Writer.write w ~type_id:1 "still fine");
  Alcotest.(check int) "the frame after the bad inputs" 1
    (List.length (ok (Reader.read_batch ~timeout_ns:0 ~max_frames:(1 lsl 31) r)));
  check_code "nothing was written by the refused calls" Error.Empty (Reader.try_read r);
  Writer.close w;
  Reader.close r

(* A handle used in a forked child: [Forked], naming the fork; the parent's
   writer and reader keep working and the reader is not taken over. *)
let test_forked_child () =
  with_channel @@ fun name ->
  let w = ok (Writer.create ~capacity:4096 name) in
  let r = ok (Reader.attach name) in
  ok (Writer.write w ~type_id:3 "pending");
  let forked = function
    | Error { Error.code = Error.Forked; message } ->
        let key = "forked process" in
        let lk = String.length key and lm = String.length message in
        let rec go i = i + lk <= lm && (String.sub message i lk = key || go (i + 1)) in
        go 0
    | _ -> false
  in
  (match Unix.fork () with
  | 0 ->
      let ok_all =
        forked (Writer.write w ~type_id:1 "child")
        && forked (Writer.try_write w ~type_id:1 "child")
        && forked (Reader.read ~timeout_ns:0 r)
        && forked (Reader.try_read r)
        && forked (Reader.read_batch ~timeout_ns:0 r)
      in
      Unix._exit (if ok_all then 0 else 1)
  | pid -> (
      match Unix.waitpid [] pid with
      | _, Unix.WEXITED 0 -> ()
      | _ -> Alcotest.fail "the child's calls did not all fail with Forked"));
  Alcotest.check frame "the parent's pending frame" { Reader.type_id = 3; payload = "pending" }
    (ok (Reader.read ~timeout_ns:1_000_000_000 r));
  ok (Writer.write w ~type_id:7 "after");
  Alcotest.check frame "after the child" { Reader.type_id = 7; payload = "after" }
    (ok (Reader.read ~timeout_ns:1_000_000_000 r));
  Alcotest.(check int) "no takeover" 0 (ok (Reader.stats r)).Stats.takeovers;
  Alcotest.(check string) "kind name" "ForkedHandle" (Error.kind_name Error.Forked);
  Alcotest.(check string) "code name" "MYC_ERR_FOREIGN" (Error.code_name Error.Foreign);
  Writer.close w;
  Reader.close r


(* A read waiting in C must not hold the OCaml runtime lock: the main thread
   has to run (and write the frame the reader waits for) meanwhile. *)
let test_read_releases_lock () =
  with_channel @@ fun name ->
  let r = ok (Reader.create name) in
  let w = ok (Writer.attach name) in
  let result = ref None in
  let t = Thread.create (fun () -> result := Some (Reader.read ~timeout_ns:5_000_000_000 r)) () in
  Thread.delay 0.05;
  (* OCaml work on this thread while the reader waits: needs the lock. *)
  let t0 = Unix.gettimeofday () in
  let x = ref 0 in
  for i = 1 to 1_000_000 do x := !x + (i land 7) done;
  ok (Writer.write w ~type_id:3 (string_of_int !x));
  Thread.join t;
  let waited = Unix.gettimeofday () -. t0 in
  Alcotest.(check bool) "main thread ran while the reader waited" true (waited < 2.0);
  (match !result with
  | Some (Ok f) -> Alcotest.(check int) "frame" 3 f.Reader.type_id
  | Some (Error e) -> Alcotest.failf "read failed: %s" (Error.to_string e)
  | None -> Alcotest.fail "no result");
  Writer.close w;
  Reader.close r

(* A signal ends a blocking read with Interrupted, after its OCaml handler
   has run, instead of waiting out the timeout. *)
let test_signal_interrupts_read () =
  with_channel @@ fun name ->
  let r = ok (Reader.create name) in
  let fired = ref false in
  let old = Sys.signal Sys.sigalrm (Sys.Signal_handle (fun _ -> fired := true)) in
  Fun.protect
    ~finally:(fun () ->
      ignore (Unix.alarm 0);
      Sys.set_signal Sys.sigalrm old;
      Reader.close r)
  @@ fun () ->
  let t0 = Unix.gettimeofday () in
  ignore (Unix.alarm 1);
  let res = Reader.read ~timeout_ns:20_000_000_000 r in
  let waited = Unix.gettimeofday () -. t0 in
  check_code "interrupted" Error.Interrupted res;
  Alcotest.(check bool) "handler ran" true !fired;
  Alcotest.(check bool) "well before the timeout" true (waited < 10.0)

(* Likewise a write waiting for room. *)
let test_write_releases_lock () =
  with_channel @@ fun name ->
  let w = ok (Writer.create ~capacity:1024 name) in
  let r = ok (Reader.attach name) in
  let payload = String.make 200 'y' in
  while Result.is_ok (Writer.try_write w ~type_id:1 payload) do () done;
  let result = ref None in
  let t =
    Thread.create (fun () -> result := Some (Writer.write ~timeout_ns:5_000_000_000 w ~type_id:2 payload)) ()
  in
  Thread.delay 0.05;
  let t0 = Unix.gettimeofday () in
  ignore (ok (Reader.read r));
  Thread.join t;
  Alcotest.(check bool) "writer woke soon" true (Unix.gettimeofday () -. t0 < 2.0);
  (match !result with
  | Some (Ok ()) -> ()
  | Some (Error e) -> Alcotest.failf "write failed: %s" (Error.to_string e)
  | None -> Alcotest.fail "no result");
  let rec last () = match Reader.try_read r with Ok f -> last_or f | Error _ -> None
  and last_or f = match last () with None -> Some f | x -> x in
  (match last () with
  | Some f -> Alcotest.(check int) "the waiting frame arrived last" 2 f.Reader.type_id
  | None -> Alcotest.fail "no frames");
  Writer.close w;
  Reader.close r

let test_threads_share_writer () =
  with_channel @@ fun name ->
  let r = ok (Reader.create ~capacity:65536 name) in
  let w = ok (Writer.attach name) in
  let per = 500 in
  let writer k () =
    for i = 1 to per do
      ok (Writer.write w ~type_id:(k + 1) (Printf.sprintf "%d" i))
    done
  in
  let ts = List.init 3 (fun k -> Thread.create (writer k) ()) in
  let next = Array.make 3 1 in
  for _ = 1 to 3 * per do
    let f = ok (Reader.read ~timeout_ns:5_000_000_000 r) in
    let k = f.Reader.type_id - 1 in
    Alcotest.(check int) "per-thread order" next.(k) (int_of_string f.Reader.payload);
    next.(k) <- next.(k) + 1
  done;
  List.iter Thread.join ts;
  check_code "no extra frame" Error.Empty (Reader.try_read r);
  Writer.close w;
  Reader.close r

let test_messages_over_channel () =
  with_channel @@ fun name ->
  let r = ok (Reader.create ~schema_digest:Trading.schema_digest name) in
  let w = ok (Writer.attach ~schema_digest:Trading.schema_digest name) in
  let msg =
    Trading.Stop { Trading.Stop.last_seq = Int64.minus_one; reason = "done \xe2\x9c\x93" }
  in
  let type_id, payload = Trading.encode msg in
  ok (Writer.write w ~type_id payload);
  let f = ok (Reader.read r) in
  (match Trading.decode ~type_id:f.Reader.type_id f.Reader.payload with
  | Ok m -> Alcotest.(check bool) "same message" true (m = msg)
  | Error e -> Alcotest.failf "decode: %s" (Mycelium_codec.error_to_string e));
  Writer.close w;
  Reader.close r

let test_stall_and_force_unblock () =
  with_channel @@ fun name ->
  check_code "no channel" Error.Not_found (Channel.force_unblock name);
  check_code "bad name" Error.Invalid_name (Channel.force_unblock "a/b");
  let r = ok (Reader.create ~capacity:4096 name) in
  let w = ok (Writer.attach name) in
  ok (Writer.write w ~type_id:1 "x");
  let i = ok (Channel.inspect name) in
  Alcotest.(check int) "format version" 2 i.Info.format_version;
  Alcotest.(check (option int)) "no stall" None i.Info.stalled_pid;
  Alcotest.(check (option int)) "no stall time" None i.Info.stalled_since_ns;
  Alcotest.(check (option int)) "no hold" None i.Info.hold_position;
  ignore (ok (Reader.read r));
  check_code "an empty ring holds nothing back" Error.Empty (Channel.force_unblock name);
  (* A 16-byte header + 1 byte, 16-aligned. *)
  Alcotest.(check int) "head after one frame" 32 (ok (Reader.stats r)).Stats.head;
  Writer.close w;
  Reader.close r

let test_too_many_writers () =
  with_channel @@ fun name ->
  let r = ok (Reader.create ~capacity:4096 name) in
  let ws = List.init 32 (fun _ -> ok (Writer.attach name)) in
  (match Writer.attach name with
  | Ok _ -> Alcotest.fail "a 33rd writer got a slot"
  | Error e ->
      Alcotest.(check string) "code" "MYC_ERR_TOO_MANY_WRITERS" (Error.code_name e.Error.code);
      Alcotest.(check string) "kind" "TooManyWriters" (Error.kind_name e.Error.code);
      Alcotest.(check bool) "has a message" true (e.Error.message <> ""));
  let i = ok (Channel.inspect name) in
  Alcotest.(check (list int)) "one line per process" [ Unix.getpid () ]
    (List.map (fun wr -> wr.Info.pid) i.Info.writers);
  Writer.close (List.hd ws);
  let w = ok (Writer.attach name) in
  ok (Writer.write w ~type_id:1 "in");
  List.iter Writer.close (w :: List.tl ws);
  Reader.close r

let () =
  Alcotest.run "channel"
    [
      ( "channel",
        [
          Alcotest.test_case "write and read" `Quick test_roundtrip;
          Alcotest.test_case "binary and large payloads" `Quick test_binary_and_large;
          Alcotest.test_case "open errors" `Quick test_open_errors;
          Alcotest.test_case "schema digest" `Quick test_schema;
          Alcotest.test_case "full ring" `Quick test_full;
          Alcotest.test_case "read_batch" `Quick test_batch;
          Alcotest.test_case "write_batch" `Quick test_write_batch;
          Alcotest.test_case "read_into" `Quick test_read_into;
          Alcotest.test_case "write_bigstring" `Quick test_write_bigstring;
          Alcotest.test_case "with_peek" `Quick test_with_peek;
          Alcotest.test_case "bigstring round trips skip the major heap" `Quick
            test_bigstring_no_major_alloc;
          Alcotest.test_case "closed handles" `Quick test_closed;
          Alcotest.test_case "bad inputs name the argument" `Quick test_bad_inputs;
          Alcotest.test_case "a forked child cannot use the parent's handles" `Quick
            test_forked_child;
          Alcotest.test_case "blocking read releases the runtime lock" `Quick test_read_releases_lock;
          Alcotest.test_case "blocking write releases the runtime lock" `Quick test_write_releases_lock;
          Alcotest.test_case "a signal interrupts a blocking read" `Quick test_signal_interrupts_read;
          Alcotest.test_case "threads share a writer" `Quick test_threads_share_writer;
          Alcotest.test_case "messages over a channel" `Quick test_messages_over_channel;
          Alcotest.test_case "stall fields and force_unblock" `Quick test_stall_and_force_unblock;
          Alcotest.test_case "too many writers" `Quick test_too_many_writers;
        ] );
    ]
