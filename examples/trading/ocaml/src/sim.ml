open Trading_messages
module Msg = Mycelium_bus.Msg

let signal = Msg.v (module Trading.Signal)
let order_request = Msg.v (module Trading.OrderRequest)
let fill = Msg.v (module Trading.Fill)
let end_of_signals = Msg.v (module Trading.EndOfSignals)
let end_of_orders = Msg.v (module Trading.EndOfOrders)
let end_of_fills = Msg.v (module Trading.EndOfFills)
let pips x = int_of_float (Float.floor ((x *. 100000.0) +. 0.5))

let fill_record (f : Trading.Fill.t) =
  Printf.sprintf "F,%Lu,%Lu,%s,%d,%d,%016Lx,%016Lx,%d,%d,%Lu\n" f.order_id f.exec_id f.symbol
    f.side f.qty (Int64.bits_of_float f.price) (Int64.bits_of_float f.fee) f.leaves
    (if f.last then 1 else 0)
    f.tick_seq

type fnv = int64 ref

let fnv () = ref 0xcbf29ce484222325L

let fnv_update h s =
  String.iter
    (fun c -> h := Int64.mul (Int64.logxor !h (Int64.of_int (Char.code c))) 0x100000001b3L)
    s

let fnv_hex h = Printf.sprintf "%016Lx" !h
external monotonic_ns : unit -> int = "trading_monotonic_ns" [@@noalloc]

let percentiles samples =
  let sorted = Array.of_list samples in
  Array.sort compare sorted;
  let n = Array.length sorted in
  if n = 0 then `Assoc []
  else
    let rank q =
      let i = max 0 (min (n - 1) (int_of_float (Float.ceil (q *. float_of_int n)) - 1)) in
      (* One decimal, written as is (Yojson would print 77322.6 as
         77322.60000000001): [Intlit] holds a JSON number literal verbatim. *)
      `Intlit (Printf.sprintf "%.1f" (float_of_int sorted.(i) /. 1000.))
    in
    `Assoc [ ("p50", rank 0.5); ("p99", rank 0.99); ("p99.9", rank 0.999); ("max", rank 1.0) ]

let lock = Mutex.create ()

let with_lock f =
  Mutex.lock lock;
  Fun.protect ~finally:(fun () -> Mutex.unlock lock) f

let opened : (string, unit) Hashtbl.t = Hashtbl.create 4

let rec mkdir_p dir =
  if not (Sys.file_exists dir) then (
    mkdir_p (Filename.dirname dir);
    try Unix.mkdir dir 0o755 with Unix.Unix_error (Unix.EEXIST, _, _) -> ())

let open_audit dir name =
  let path = Filename.concat dir name in
  with_lock (fun () ->
      try
        mkdir_p dir;
        let flags =
          if Hashtbl.mem opened path then [ Open_wronly; Open_creat; Open_append; Open_text ]
          else [ Open_wronly; Open_creat; Open_trunc; Open_text ]
        in
        let oc = open_out_gen flags 0o644 path in
        Hashtbl.replace opened path ();
        Ok oc
      with
      | Sys_error e -> Error (Printf.sprintf "audit log %s: %s" path e)
      | Unix.Unix_error (e, _, _) ->
          Error (Printf.sprintf "audit log %s: %s" path (Unix.error_message e)))

let emit tag json =
  with_lock (fun () ->
      print_string (tag ^ " " ^ Yojson.Safe.to_string json ^ "\n");
      flush stdout)

let registered : (string, unit) Hashtbl.t = Hashtbl.create 4
let done_ : (string, unit) Hashtbl.t = Hashtbl.create 4
let register name = with_lock (fun () -> Hashtbl.replace registered name ())

let finished name =
  with_lock (fun () ->
      Hashtbl.replace done_ name ();
      Hashtbl.fold (fun n () all -> all && Hashtbl.mem done_ n) registered true)
