(* Benchmark roles driven by bench/bench_ocaml.py (one process per role,
   pinned to a core by the driver).  The same roles as
   bindings/rust/examples/bench.rs:

     bench.exe ping REQ REP [--iters N] [--warmup N] [--size BYTES]
     bench.exe pong REQ REP
     bench.exe send CHANNEL [--count N] [--size BYTES] [--batch N]
     bench.exe recv CHANNEL

   All channels must exist (the driver creates them).  Frames are raw (type
   id 1, [size] payload bytes); type id 65535 is the stop frame.

   - ping writes a frame to REQ and waits for the echo on REP, [iters] times
     after [warmup] unmeasured rounds, then sends the stop frame and prints
     one JSON object: p50_ns, p99_ns, p999_ns, mean_ns, min_ns, max_ns,
     samples (nearest-rank percentiles of the round-trip times) and
     msgs_per_s (measured round trips per second).
   - pong answers every REQ frame with the same payload on REP until the stop
     frame, which it forwards.
   - send writes [count] frames (by write_batch when [batch] > 1), then the
     stop frame; prints {"elapsed_ns": ...}.
   - recv reads (with_peek, in place) until the stop frame; prints frames, bytes,
     elapsed_ns (first frame to stop frame), msgs_per_s, bytes_per_s. *)

open Mycelium_shm
module E = Example_common

external now_ns : unit -> (int[@untagged])
  = "mycelium_bench_now_ns_byte" "mycelium_bench_now_ns"
  [@@noalloc]

let usage_text =
  "bench ping REQ REP [--iters N] [--warmup N] [--size B] | bench pong REQ REP | bench send CH \
   [--count N] [--size B] [--batch N] | bench recv CH"

let data = 1
let stop = 65535
let writer name = match Writer.attach name with Ok w -> w | Error e -> E.die "attach writer" e
let reader name = match Reader.attach name with Ok r -> r | Error e -> E.die "attach reader" e
let check what = function Ok v -> v | Error e -> E.die what e

(* [with_peek r f] is [f type_id view] of the next frame, seen in place in
   the ring (as bench.rs's [peek]): ping and pong copy each payload once,
   into the other ring, and allocate nothing on the OCaml heap (a fresh
   string per large frame would go to the major heap and drive major GCs
   and compactions). *)
let rec with_peek r f =
  match Reader.with_peek r f with
  | Error { Error.code = Error.Interrupted; _ } -> with_peek r f
  | x -> check "read" x

let bigstring n = Bigarray.Array1.create Bigarray.char Bigarray.c_layout n

let percentile sorted q =
  let n = Array.length sorted in
  let rank = max 1 (min n (int_of_float (Float.ceil (q *. float_of_int n)))) in
  sorted.(rank - 1)

let ping args req rep =
  let iters = max 1 (E.int_opt args "iters" 100_000 usage_text) in
  let warmup = E.int_opt args "warmup" 10_000 usage_text in
  let size = E.int_opt args "size" 64 usage_text in
  let w = writer req and r = reader rep in
  let payload = bigstring size in
  Bigarray.Array1.fill payload '\xa5';
  let samples = Array.make iters 0 in
  for i = 0 to warmup + iters - 1 do
    let t0 = now_ns () in
    check "write" (Writer.write_bigstring w ~type_id:data payload);
    let len = with_peek r (fun _ view -> Bigarray.Array1.dim view) in
    let dt = now_ns () - t0 in
    if len <> size then failwith "echo of the wrong size";
    if i >= warmup then samples.(i - warmup) <- dt
  done;
  check "write stop" (Writer.write w ~type_id:stop "");
  let total = Array.fold_left ( + ) 0 samples in
  Array.sort compare samples;
  Printf.printf
    "{\"p50_ns\": %d, \"p99_ns\": %d, \"p999_ns\": %d, \"mean_ns\": %.1f, \"min_ns\": %d, \
     \"max_ns\": %d, \"samples\": %d, \"msgs_per_s\": %.1f}\n"
    (percentile samples 0.50) (percentile samples 0.99) (percentile samples 0.999)
    (float_of_int total /. float_of_int iters)
    samples.(0)
    samples.(iters - 1)
    iters
    (float_of_int iters *. 1e9 /. float_of_int (max total 1))

let pong req rep =
  let r = reader req and w = writer rep in
  let rec loop () =
    let type_id =
      with_peek r (fun type_id view ->
          check "write" (Writer.write_bigstring w ~type_id view);
          type_id)
    in
    if type_id <> stop then loop ()
  in
  loop ()

let send args ch =
  let count = E.int_opt args "count" 1_000_000 usage_text in
  let size = E.int_opt args "size" 64 usage_text in
  let batch = max 1 (E.int_opt args "batch" 1 usage_text) in
  let w = writer ch in
  let payload = String.make size '\xa5' in
  let t0 = now_ns () in
  if batch = 1 then
    for _ = 1 to count do
      check "write" (Writer.write w ~type_id:data payload)
    done
  else begin
    let left = ref count in
    while !left > 0 do
      let n = min batch !left in
      let k = check "write_batch" (Writer.write_batch w (List.init n (fun _ -> (data, payload)))) in
      left := !left - k
    done
  end;
  check "write stop" (Writer.write w ~type_id:stop "");
  Printf.printf "{\"elapsed_ns\": %d}\n" (now_ns () - t0)

let recv ch =
  let r = reader ch in
  let frames = ref 0 and bytes = ref 0 and t0 = ref 0 in
  let finished = ref false in
  while not !finished do
    with_peek r (fun type_id view ->
        if !t0 = 0 then t0 := now_ns ();
        if type_id = stop then finished := true
        else begin
          incr frames;
          bytes := !bytes + Bigarray.Array1.dim view
        end)
  done;
  let ns = max 1 (now_ns () - !t0) in
  Printf.printf
    "{\"frames\": %d, \"bytes\": %d, \"elapsed_ns\": %d, \"msgs_per_s\": %.1f, \"bytes_per_s\": \
     %.1f}\n"
    !frames !bytes ns
    (float_of_int !frames *. 1e9 /. float_of_int ns)
    (float_of_int !bytes *. 1e9 /. float_of_int ns)

let () =
  let args = E.parse usage_text in
  match args.E.positional with
  | [ "ping"; req; rep ] -> ping args req rep
  | [ "pong"; req; rep ] -> pong req rep
  | [ "send"; ch ] -> send args ch
  | [ "recv"; ch ] -> recv ch
  | _ -> E.usage usage_text
