(* Tests of the OCaml bus.  Channels get unique names and are unlinked,
   sockets live in a fresh temporary directory, child processes are
   reaped, even when a test fails. *)

open Mycelium_bus

let tick = Msg.v (module Trading.MarketTick)
let stop = Msg.v (module Trading.Stop)
let digest = Trading.schema_digest
let other_digest = Schema.schema_digest (* tests/vectors/schema.toml: another schema *)
let ok r = Bus_error.get_exn r
let counter = ref 0

let fresh prefix =
  incr counter;
  Printf.sprintf "%s.%d.%d" prefix (Unix.getpid ()) !counter

let with_channel f =
  let name = fresh "ocaml-bus" in
  Mycelium_shm.Channel.unlink_if_exists name;
  Fun.protect ~finally:(fun () -> Mycelium_shm.Channel.unlink_if_exists name) (fun () -> f name)

let tmpdir =
  lazy
    (let d = Filename.concat (Filename.get_temp_dir_name ()) (fresh "ocaml-bus-test") in
     Unix.mkdir d 0o700;
     at_exit (fun () ->
         Array.iter (fun f -> try Sys.remove (Filename.concat d f) with _ -> ()) (Sys.readdir d);
         try Unix.rmdir d with _ -> ());
     d)

let sock_path () = Filename.concat (Lazy.force tmpdir) (fresh "s" ^ ".sock")

let mk seq =
  {
    Trading.MarketTick.symbol = "EURUSD";
    seq = Int64.of_int seq;
    ts_ns = 0L;
    bid = 1.0;
    ask = 1.1;
    bid_size = 1;
    ask_size = 2;
  }

let seqs l = List.map (fun t -> Int64.to_int t.Trading.MarketTick.seq) l
let range a b = List.init (b - a + 1) (fun i -> a + i)
let ints = Alcotest.(list int)

let kind = function Ok _ -> "Ok" | Error e -> Bus_error.kind_name e

(* Wait until [f ()] or fail after [timeout] seconds. *)
let eventually ?(timeout = 10.) what f =
  let d = Unix.gettimeofday () +. timeout in
  while not (f ()) do
    if Unix.gettimeofday () > d then Alcotest.failf "timed out waiting for %s" what;
    Thread.delay 0.005
  done

let take_n q n =
  List.init n (fun _ ->
      match Subscriber.get ~timeout:10. q with
      | Ok x -> x
      | Error e -> Alcotest.failf "subscriber: %s" (Bus_error.to_string e))

(* -- in process ------------------------------------------------------------- *)

let test_local_delivery () =
  let bus = Bus.create ~digest () in
  let seen = ref [] in
  let sub = Bus.subscribe bus tick (fun t -> seen := t :: !seen) in
  let q = Bus.subscriber bus tick in
  let p = Bus.publisher bus tick in
  let t1 = mk 1 in
  ok (Bus.publish p t1);
  ok (Bus.publish p (mk 2));
  Alcotest.(check ints) "handler order" [ 1; 2 ] (seqs (List.rev !seen));
  Alcotest.(check bool) "handler gets the very value" true (List.nth !seen 1 == t1);
  (match Subscriber.try_get q with
  | Some t -> Alcotest.(check bool) "queue gets the very value" true (t == t1)
  | None -> Alcotest.fail "queue empty");
  Bus.unsubscribe sub;
  ok (Bus.publish p (mk 3));
  Alcotest.(check int) "unsubscribed" 2 (List.length !seen);
  Alcotest.(check ints) "queue keeps going" [ 2; 3 ] (seqs (Subscriber.drain q));
  (* A raising handler is logged and counted; the others still run. *)
  let _ = Bus.subscribe bus tick (fun _ -> failwith "boom") in
  let after = ref 0 in
  let _ = Bus.subscribe bus tick (fun _ -> incr after) in
  ok (Bus.publish p (mk 4));
  Alcotest.(check int) "next handler ran" 1 !after;
  Alcotest.(check int) "counted" 1 (List.assoc "handler_errors" (Bus.stats bus));
  (* Another type is not delivered here. *)
  ok (Bus.send bus stop { Trading.Stop.last_seq = 4L; reason = "" });
  Alcotest.(check int) "queue only has ticks" 1 (Subscriber.length q);
  Bus.close bus;
  Alcotest.(check string) "closed" "BusClosed" (kind (Bus.publish p (mk 5)));
  Alcotest.(check bool) "subscriber closed" true (Subscriber.is_closed q)

let test_two_descriptors () =
  let bus = Bus.create ~digest () in
  let tick' = Msg.v (module Trading.MarketTick) in
  let q = Bus.subscriber bus tick' in
  ok (Bus.send bus tick (mk 7));
  Alcotest.(check ints) "via the encoding" [ 7 ] (seqs (Subscriber.drain q));
  let bad = { (mk 8) with Trading.MarketTick.bid_size = -1 } in
  Alcotest.(check string) "encode error" "EncodeError" (kind (Bus.send bus tick bad));
  Bus.close bus

let test_overflow () =
  let bus = Bus.create ~digest () in
  let p = Bus.publisher bus tick in
  let oldest = Bus.subscriber ~capacity:3 ~overflow:Subscriber.Drop_oldest bus tick in
  let newest = Bus.subscriber ~capacity:3 ~overflow:Subscriber.Drop_newest bus tick in
  let raising = Bus.subscriber ~capacity:3 ~overflow:Subscriber.Raise bus tick in
  let results = List.map (fun i -> kind (Bus.publish p (mk i))) (range 1 5) in
  Alcotest.(check (list string)) "raise on the 4th and 5th"
    [ "Ok"; "Ok"; "Ok"; "SubscriberOverflow"; "SubscriberOverflow" ]
    results;
  Alcotest.(check ints) "drop oldest" [ 3; 4; 5 ] (seqs (Subscriber.drain oldest));
  Alcotest.(check int) "drop oldest counted" 2 (Subscriber.dropped oldest);
  Alcotest.(check ints) "drop newest" [ 1; 2; 3 ] (seqs (Subscriber.drain newest));
  Alcotest.(check int) "drop newest counted" 2 (Subscriber.dropped newest);
  Alcotest.(check ints) "raise keeps the first" [ 1; 2; 3 ] (seqs (Subscriber.drain raising));
  (* A transport frame has nobody to raise to: dropped and counted. *)
  List.iter (fun i -> ok (Bus.publish p (mk i))) (range 1 3);
  Bus.deliver_frame bus Trading.MarketTick.type_id (Trading.MarketTick.encode (mk 9));
  Alcotest.(check int) "transport frame dropped" 1 (Subscriber.dropped raising);
  Bus.close bus;
  (* Block: the publisher waits for the consumer; nothing is lost. *)
  let bus = Bus.create ~digest () in
  let q = Bus.subscriber ~capacity:2 bus tick in
  let p = Bus.publisher bus tick in
  let published = ref 0 in
  let th = Thread.create (fun () -> List.iter (fun i -> ok (Bus.publish p (mk i)); incr published) (range 1 10)) () in
  eventually "the queue to fill" (fun () -> Subscriber.length q = 2);
  Thread.delay 0.05;
  Alcotest.(check int) "publisher blocked" 2 !published;
  Alcotest.(check ints) "all, in order" (range 1 10) (seqs (take_n q 10));
  Thread.join th;
  Alcotest.(check int) "no drops" 0 (Subscriber.dropped q);
  (* A blocked publisher is released with Closed when the queue closes. *)
  List.iter (fun i -> ok (Bus.publish p (mk i))) [ 1; 2 ];
  let r = ref (Ok ()) in
  let th = Thread.create (fun () -> r := Bus.publish p (mk 3)) () in
  Thread.delay 0.05;
  Subscriber.close q;
  Thread.join th;
  Alcotest.(check string) "released" "BusClosed" (kind !r);
  Alcotest.(check string) "timeout" "TimeoutError"
    (kind (Subscriber.get ~timeout:0.01 (Subscriber.create () : int Subscriber.t)));
  Bus.close bus

(* -- across transports ---------------------------------------------------------- *)

type transport = Shm | Unix_sock | Tcp

let transports = [ ("shm", Shm); ("unix", Unix_sock); ("tcp", Tcp) ]

(* [with_pair tr ~link_first f]: a receiving bus with an inbound endpoint and
   a sending bus with a link to it; with [link_first] the link is opened
   (and used) before the endpoint exists. *)
let with_pair ?(link_digest = digest) ?(link_first = false) tr f =
  with_channel @@ fun channel ->
  let tcp_port () =
    (* A free port: bind port 0, read it, close. *)
    let fd = Unix.socket Unix.PF_INET Unix.SOCK_STREAM 0 in
    Unix.bind fd (Unix.ADDR_INET (Unix.inet_addr_loopback, 0));
    let port = match Unix.getsockname fd with Unix.ADDR_INET (_, p) -> p | _ -> assert false in
    Unix.close fd;
    port
  in
  let addr =
    match tr with
    | Shm -> None
    | Unix_sock -> Some (Sock.Unix_socket (sock_path ()))
    | Tcp -> Some (Sock.Tcp ("127.0.0.1", tcp_port ()))
  in
  let rx = Bus.create ~name:"rx" ~digest () and tx = Bus.create ~name:"tx" ~digest () in
  let open_inbound () =
    let ep =
      match addr with
      | None -> ok (Inbound.shm ~capacity:65536 ~digest channel)
      | Some a -> ok (Inbound.socket ~digest a)
    in
    Bus.add_inbound rx ep;
    ep
  in
  let open_link () =
    let l =
      match addr with
      | None -> Link.shm ~backoff_max:0.05 ~digest:link_digest channel
      | Some a -> Link.socket ~backoff_max:0.05 ~digest:link_digest a
    in
    Bus.add_link tx l [ Trading.MarketTick.type_id; Trading.Stop.type_id ];
    l
  in
  Fun.protect
    ~finally:(fun () ->
      Bus.close ~timeout:1. tx;
      Bus.close ~timeout:1. rx)
    (fun () ->
      if link_first then
        let l = open_link () in
        f ~rx ~tx ~link:l ~open_inbound
      else
        let ep = open_inbound () in
        let l = open_link () in
        f ~rx ~tx ~link:l ~open_inbound:(fun () -> ep))

let test_transport tr () =
  with_pair tr @@ fun ~rx ~tx ~link ~open_inbound ->
  let ep = open_inbound () in
  let q = Bus.subscriber ~capacity:100_000 rx tick in
  Bus.start rx;
  let p = Bus.publisher tx tick in
  let n = 5000 in
  List.iter (fun i -> ok (Bus.publish p (mk i))) (range 1 n);
  Alcotest.(check ints) "every frame, in order" (range 1 n) (seqs (take_n q n));
  Alcotest.(check bool) "flushed" true (ok (Link.flush ~timeout:5. link));
  Alcotest.(check int) "received" n (List.assoc "received" (Bus.stats rx));
  Alcotest.(check int) "endpoint frames" n (List.assoc "frames" (Inbound.stats ep));
  (* Frames nobody here subscribes to are counted, not delivered. *)
  ok (Bus.send tx stop { Trading.Stop.last_seq = 1L; reason = "x" });
  eventually "unrouted" (fun () -> List.assoc "unrouted" (Bus.stats rx) = 1);
  (* A large frame (above the 64 KiB read buffer) over sockets, 10 KiB over shm. *)
  let big = String.make (if tr = Shm then 10_000 else 200_000) 'x' in
  ok (Bus.publish p { (mk (n + 1)) with Trading.MarketTick.symbol = big });
  (match Subscriber.get ~timeout:10. q with
  | Ok t -> Alcotest.(check int) "big symbol" (String.length big) (String.length t.Trading.MarketTick.symbol)
  | Error e -> Alcotest.fail (Bus_error.to_string e))

let test_link_before_peer tr () =
  with_pair ~link_first:true tr @@ fun ~rx ~tx ~link ~open_inbound ->
  let p = Bus.publisher tx tick in
  List.iter (fun i -> ok (Bus.publish p (mk i))) (range 1 100);
  Thread.delay 0.1;
  Alcotest.(check bool) "not connected yet" false (Link.connected link);
  Alcotest.(check int) "queued" 100 (Link.pending link);
  let q = Bus.subscriber ~capacity:1000 rx tick in
  ignore (open_inbound ());
  Bus.start rx;
  List.iter (fun i -> ok (Bus.publish p (mk i))) (range 101 200);
  Alcotest.(check ints) "queued ones first, in order" (range 1 200) (seqs (take_n q 200));
  Alcotest.(check bool) "connected" true (Link.connected link);
  (* close flushes: frames published right before it still arrive. *)
  List.iter (fun i -> ok (Bus.publish p (mk i))) (range 201 300);
  Bus.close tx;
  Alcotest.(check ints) "flushed on close" (range 201 300) (seqs (take_n q 100))

let test_schema_mismatch tr () =
  with_pair ~link_digest:other_digest tr @@ fun ~rx ~tx ~link ~open_inbound ->
  let ep = open_inbound () in
  Bus.start rx;
  Alcotest.(check string) "link refuses" "SchemaMismatch" (kind (Link.wait_connected ~timeout:10. link));
  Alcotest.(check string) "send refuses" "SchemaMismatch" (kind (Bus.send tx tick (mk 1)));
  if tr <> Shm then (
    eventually "the endpoint's error" (fun () -> Inbound.errors ep <> []);
    Alcotest.(check string) "endpoint refuses" "SchemaMismatch"
      (Bus_error.kind_name (List.hd (Inbound.errors ep))));
  Alcotest.(check int) "nothing received" 0 (List.assoc "received" (Bus.stats rx))

(* A raw client: our hello, then [frames]; the endpoint must end the
   connection on a bad header before reading any payload. *)
let test_hostile_frames () =
  let path = sock_path () in
  let rx = Bus.create ~digest () in
  let ep =
    ok (Inbound.socket ~max_payload:1024 ~handshake_timeout:0.3 ~digest (Sock.Unix_socket path))
  in
  Bus.add_inbound rx ep;
  let q = Bus.subscriber rx tick in
  Bus.start rx;
  let send_raw header =
    let fd = ok (Sock.connect ~timeout:5. (Sock.Unix_socket path)) in
    Sock.write_all fd (Wire.hello ~max_payload:(1 lsl 20) ~digest);
    let hello = Bytes.create 48 in
    Alcotest.(check bool) "hello" true (Sock.read_exact fd hello 0 48 = `Ok);
    Alcotest.(check int) "agreed max" 1024
      (ok (Wire.check_hello ~digest ~max_payload:(1 lsl 20) (Bytes.to_string hello)));
    let good = Trading.MarketTick.encode (mk 1) in
    let b = Buffer.create 64 in
    Wire.add_frame_header b ~type_id:1 ~payload_len:(String.length good);
    Buffer.add_string b good;
    Buffer.add_string b header;
    Sock.write_all fd (Buffer.contents b);
    (* The endpoint closes the connection: read sees EOF. *)
    let r = try Unix.read fd hello 0 1 with Unix.Unix_error _ -> 0 in
    Unix.close fd;
    r
  in
  let hdr len type_id =
    let b = Bytes.create 8 in
    Bytes.set_int32_le b 0 (Int32.of_int len);
    Bytes.set_uint16_le b 4 type_id;
    Bytes.set_uint16_le b 6 0;
    Bytes.to_string b
  in
  Alcotest.(check int) "oversized: closed" 0 (send_raw (hdr (8 + 1025) 1));
  Alcotest.(check int) "type 0: closed" 0 (send_raw (hdr 16 0));
  Alcotest.(check int) "short length: closed" 0 (send_raw (hdr 7 1));
  Alcotest.(check ints) "the good frames before them arrived" [ 1; 1; 1 ] (seqs (take_n q 3));
  (* A peer that dribbles its hello is dropped once the handshake time is up. *)
  let fd = ok (Sock.connect ~timeout:5. (Sock.Unix_socket path)) in
  let t0 = Unix.gettimeofday () in
  Sock.write_all fd (String.sub (Wire.hello ~max_payload:1024 ~digest) 0 10);
  Thread.delay 0.2;
  Sock.write_all fd (String.sub (Wire.hello ~max_payload:1024 ~digest) 10 10);
  let b = Bytes.create 64 in
  Alcotest.(check bool) "their hello" true (Sock.read_exact fd b 0 48 = `Ok);
  Alcotest.(check bool) "then EOF" true (Sock.read_exact fd b 0 1 = `Eof 0);
  let dt = Unix.gettimeofday () -. t0 in
  Alcotest.(check bool) (Printf.sprintf "after about 0.3 s (%.2f)" dt) true (dt >= 0.25 && dt < 3.);
  Unix.close fd;
  Alcotest.(check int) "timed out" 1 (List.assoc "timed_out" (Inbound.stats ep));
  eventually "errors" (fun () -> List.length (Inbound.errors ep) = 4);
  Alcotest.(check int) "oversized counted" 1 (List.assoc "oversized" (Inbound.stats ep));
  List.iter
    (fun e -> Alcotest.(check string) "transport error" "TransportError" (Bus_error.kind_name e))
    (Inbound.errors ep);
  Bus.close rx;
  Alcotest.(check bool) "socket file removed" false (Sys.file_exists path)

(* -- hostile peers at scale: memory, log volume, slot squatting ---------------- *)

(* [capture_stderr f] runs [f] with file descriptor 2 (where Log writes)
   sent to a file: [(f (), lines written)]. *)
let capture_stderr f =
  let file = Filename.concat (Lazy.force tmpdir) (fresh "stderr" ^ ".log") in
  flush stderr;
  let saved = Unix.dup ~cloexec:true Unix.stderr in
  let fd = Unix.openfile file [ Unix.O_WRONLY; Unix.O_CREAT; Unix.O_TRUNC; Unix.O_CLOEXEC ] 0o600 in
  Unix.dup2 fd Unix.stderr;
  Unix.close fd;
  let r =
    Fun.protect
      ~finally:(fun () ->
        flush stderr;
        Unix.dup2 saved Unix.stderr;
        Unix.close saved)
      f
  in
  let ic = open_in file in
  let rec lines acc = match input_line ic with l -> lines (l :: acc) | exception End_of_file -> List.rev acc in
  let l = lines [] in
  close_in ic;
  Sys.remove file;
  (r, l)

let contains s sub =
  let n = String.length s and k = String.length sub in
  let rec go i = i + k <= n && (String.sub s i k = sub || go (i + 1)) in
  go 0

(* The N of the lines "...: N more WHAT not logged", summed. *)
let summarized what lines =
  List.fold_left
    (fun acc l ->
      let marker = " more " ^ what ^ " not logged" in
      if contains l marker then
        match String.rindex_from_opt l (String.length l - String.length marker - 1) ' ' with
        | Some i ->
            let j = ref (i + 1) in
            while !j < String.length l && l.[!j] >= '0' && l.[!j] <= '9' do incr j done;
            acc + int_of_string (String.sub l (i + 1) (!j - i - 1))
        | None -> acc
      else acc)
    0 lines

let count_lines sub lines = List.length (List.filter (fun l -> contains l sub) lines)

(* A raw peer: connected, and through the handshake when [hello]. *)
let raw_peer ?(hello = true) path =
  let fd = ok (Sock.connect ~timeout:5. (Sock.Unix_socket path)) in
  if hello then (
    Sock.write_all fd (Wire.hello ~max_payload:(1 lsl 20) ~digest);
    let b = Bytes.create 48 in
    if Sock.read_exact fd b 0 48 <> `Ok then Alcotest.fail "no hello from the endpoint");
  fd

let rss_kib () =
  let ic = open_in "/proc/self/status" in
  let rec go () =
    match input_line ic with
    | l when String.length l > 6 && String.sub l 0 6 = "VmRSS:" ->
        Scanf.sscanf (String.sub l 6 (String.length l - 6)) " %d" Fun.id
    | _ -> go ()
    | exception End_of_file -> 0
  in
  Fun.protect ~finally:(fun () -> close_in ic) go

(* Log's lines (Alcotest writes its ASSERT lines to stderr too). *)
let log_lines =
  List.filter (fun l ->
      List.exists
        (fun p -> String.length l >= String.length p && String.sub l 0 (String.length p) = p)
        [ "debug: "; "info: "; "warning: "; "error: " ])

(* Connect/close churn: the endpoint's bookkeeping returns to nothing open,
   its connection threads stay within max_connections, and memory does
   not grow with the number of connections (a thread per connection leaked
   about 4 KiB each in OCaml 4.13). *)
let test_churn_memory () =
  let path = sock_path () in
  let ep = ok (Inbound.socket ~max_connections:8 ~digest (Sock.Unix_socket path)) in
  Fun.protect ~finally:(fun () -> Inbound.close ep) @@ fun () ->
  Inbound.start ep (fun _ _ -> ());
  let stat k = List.assoc k (Inbound.stats ep) in
  let churn n =
    let clients =
      List.init 4 (fun _ ->
          Thread.create
            (fun () ->
              for _ = 1 to n / 4 do
                match Sock.connect ~timeout:5. (Sock.Unix_socket path) with
                | Ok fd ->
                    (* The endpoint's hello or EOF (refused): it accepted. *)
                    let b = Bytes.create 48 in
                    ignore (try Sock.read_exact fd b 0 48 with Unix.Unix_error _ -> `Eof 0);
                    Unix.close fd
                | Error e -> Alcotest.failf "connect: %s" (Bus_error.to_string e)
              done)
            ())
    in
    List.iter Thread.join clients;
    eventually "every connection closed" (fun () -> stat "open" = 0)
  in
  let grown, _ =
    capture_stderr (fun () ->
        churn 400;
        Gc.compact ();
        let before = rss_kib () in
        churn 4000;
        Gc.compact ();
        rss_kib () - before)
  in
  Alcotest.(check bool) (Printf.sprintf "RSS grew %d KiB over 4000 connections" grown) true (grown < 4000);
  Alcotest.(check bool) (Printf.sprintf "workers %d <= 8" (stat "workers")) true (stat "workers" <= 8);
  Alcotest.(check int) "no connection open" 0 (stat "open");
  Inbound.close ep;
  Alcotest.(check int) "workers end at close" 0 (stat "workers")

(* A peer sending many frames that do not decode, and many peers that fail
   their handshake, cost a few log lines a second; every one is accounted
   for in a summary, the last at close. *)
let test_bad_frames_log_bounded () =
  let path = sock_path () in
  let n = 3000 and failed = 300 in
  let rx = Bus.create ~name:"rx" ~digest () in
  let (), lines =
    capture_stderr (fun () ->
        let ep = ok (Inbound.socket ~digest (Sock.Unix_socket path)) in
        Bus.add_inbound rx ep;
        let q = Bus.subscriber rx tick in
        Bus.start rx;
        let fd = raw_peer path in
        let bad = Bytes.create 13 in
        Bytes.set_int32_le bad 0 13l;
        Bytes.set_uint16_le bad 4 Trading.MarketTick.type_id;
        Bytes.set_uint16_le bad 6 0;
        Bytes.fill bad 8 5 '\xff';
        let b = Buffer.create (13 * n) in
        for _ = 1 to n do
          Buffer.add_bytes b bad
        done;
        Sock.write_all fd (Buffer.contents b);
        Unix.close fd;
        (* Each waits for the endpoint's hello (so none is refused), then
           leaves without its own. *)
        for _ = 1 to failed do
          let fd = raw_peer ~hello:false path in
          let b = Bytes.create 48 in
          if Sock.read_exact fd b 0 48 <> `Ok then Alcotest.fail "no hello from the endpoint";
          Unix.close fd
        done;
        eventually "every bad frame seen" (fun () -> List.assoc "decode_errors" (Bus.stats rx) = n);
        (* A connection's error is reported before it leaves [open]. *)
        eventually "every failed handshake seen" (fun () -> List.assoc "open" (Inbound.stats ep) = 0);
        Alcotest.(check int) "none refused" 0 (List.assoc "refused" (Inbound.stats ep));
        Alcotest.(check int) "nothing delivered" 0 (Subscriber.length q);
        Bus.close rx)
  in
  let lines = log_lines lines in
  let logged = count_lines "did not decode" lines in
  Alcotest.(check bool) (Printf.sprintf "%d log lines" (List.length lines)) true (List.length lines <= 40);
  Alcotest.(check bool) "the first in full" true (logged >= 1);
  Alcotest.(check int) "every bad frame logged or summarized" n
    (logged + summarized "undecodable frames" lines);
  Alcotest.(check int) "every failed handshake logged or summarized" failed
    (count_lines "connection ended" lines + summarized "connection errors" lines)

(* Peers beyond max_connections are refused, and that is logged (one line
   a second at most, with the count); an idle_timeout frees the slots idle
   peers hold, so an honest link gets through. *)
let test_squatters () =
  let path = sock_path () in
  let rx = Bus.create ~name:"rx" ~digest () in
  let (), lines =
    capture_stderr (fun () ->
        let ep =
          ok (Inbound.socket ~max_connections:2 ~idle_timeout:0.5 ~digest (Sock.Unix_socket path))
        in
        Bus.add_inbound rx ep;
        let q = Bus.subscriber rx tick in
        Bus.start rx;
        let squatters = [ raw_peer path; raw_peer path ] in
        eventually "both handshaken" (fun () -> List.assoc "connections" (Inbound.stats ep) = 2);
        for _ = 1 to 20 do
          let fd = raw_peer ~hello:false path in
          let b = Bytes.create 1 in
          if (try Unix.read fd b 0 1 with Unix.Unix_error _ -> 0) <> 0 then Alcotest.fail "not refused";
          Unix.close fd
        done;
        Alcotest.(check int) "refused" 20 (List.assoc "refused" (Inbound.stats ep));
        (* The idle squatters are dropped; a link then gets in. *)
        let tx = Bus.create ~name:"tx" ~digest () in
        Fun.protect ~finally:(fun () -> Bus.close ~timeout:1. tx; List.iter Unix.close squatters)
        @@ fun () ->
        eventually "squatters dropped" (fun () -> List.assoc "open" (Inbound.stats ep) = 0);
        Alcotest.(check int) "timed out" 2 (List.assoc "timed_out" (Inbound.stats ep));
        let l = Link.socket ~backoff_max:0.05 ~digest (Sock.Unix_socket path) in
        Bus.add_link tx l [ Trading.MarketTick.type_id ];
        ok (Bus.publish (Bus.publisher tx tick) (mk 7));
        Alcotest.(check ints) "the honest frame arrived" [ 7 ] (seqs (take_n q 1));
        Bus.close rx)
  in
  let lines = log_lines lines in
  let refusal_lines = List.filter (fun l -> contains l "refused (max_connections 2 open)") lines in
  Alcotest.(check bool) (Printf.sprintf "%d refusal lines" (List.length refusal_lines)) true
    (List.length refusal_lines >= 1 && List.length refusal_lines <= 3);
  (* "warning: unix:PATH: N connections refused ..." *)
  let count l =
    let i = String.rindex_from l (String.index l '(') ':' in
    Scanf.sscanf (String.sub l (i + 1) (String.length l - i - 1)) " %d" Fun.id
  in
  Alcotest.(check int) "every refusal counted in the log" 20
    (List.fold_left (fun acc l -> acc + count l) 0 refusal_lines);
  Alcotest.(check int) "idle drops logged" 2 (count_lines "idle for 0.5 s" lines)

(* -- services ----------------------------------------------------------------------- *)

let test_restart () =
  let bus = Bus.create ~digest () in
  let handled = ref [] and starts = ref 0 and stops = ref 0 in
  let crasher _ctx =
    Ok
      (Service.make
         ~on_start:(fun () -> incr starts)
         ~on_stop:(fun () -> incr stops)
         [
           Service.handle tick (fun t ->
               let s = Int64.to_int t.Trading.MarketTick.seq in
               if s mod 4 = 0 then failwith "four";
               handled := s :: !handled);
         ])
  in
  let spec = { Runtime.name = "crasher"; consumes = Some [ "MarketTick" ]; config = `Null; factory = crasher } in
  let rt = Runtime.create ~restart_initial:0.001 bus [ spec ] in
  ok (Runtime.start rt);
  let p = Bus.publisher bus tick in
  List.iter (fun i -> ok (Bus.publish p (mk i))) (range 1 10);
  eventually "all handled" (fun () -> List.length !handled = 8);
  Alcotest.(check ints) "the stream continues" [ 1; 2; 3; 5; 6; 7; 9; 10 ] (List.rev !handled);
  Alcotest.(check int) "restarts" 2 (Runtime.restarts rt "crasher");
  Alcotest.(check int) "fresh instances started" 3 !starts;
  Runtime.stop rt;
  Alcotest.(check int) "on_stop once" 1 !stops;
  (* A handler for a type the topology does not list is refused. *)
  let bus = Bus.create ~digest () in
  let rt = Runtime.create bus [ { spec with consumes = Some [ "Stop" ] } ] in
  Alcotest.(check string) "consumes checked" "ServiceError" (kind (Runtime.start rt));
  Runtime.stop rt;
  (* max_restarts: the node gives up. *)
  let bus = Bus.create ~digest () in
  let rt = Runtime.create ~restart_initial:0.001 ~max_restarts:1 bus [ spec ] in
  ok (Runtime.start rt);
  List.iter (fun i -> ok (Bus.send bus tick (mk i))) [ 4; 8; 12 ];
  Runtime.wait rt;
  Runtime.stop rt;
  Alcotest.(check bool) "gave up" true (Runtime.failed rt)

let test_drain_order () =
  (* On stop, mailboxes drain in topology order, then on_stop, then links. *)
  let bus = Bus.create ~digest () in
  let log = ref [] in
  let gate = Mutex.create () in
  Mutex.lock gate;
  let svc name ctx =
    ignore ctx;
    Ok
      (Service.make
         ~on_stop:(fun () -> log := ("stop " ^ name) :: !log)
         [
           Service.handle tick (fun t ->
               if name = "a" && t.Trading.MarketTick.seq = 1L then (Mutex.lock gate; Mutex.unlock gate);
               log := Printf.sprintf "%s %Ld" name t.Trading.MarketTick.seq :: !log);
         ])
  in
  let spec n = { Runtime.name = n; consumes = None; config = `Null; factory = svc n } in
  let rt = Runtime.create bus [ spec "a"; spec "b" ] in
  ok (Runtime.start rt);
  List.iter (fun i -> ok (Bus.send bus tick (mk i))) [ 1; 2; 3 ];
  eventually "b handled" (fun () -> List.length !log = 3);
  let th = Thread.create (fun () -> Runtime.stop rt) () in
  Thread.delay 0.05;
  Mutex.unlock gate;
  Thread.join th;
  Alcotest.(check (list string)) "a drained, then stopped, then b"
    [ "b 1"; "b 2"; "b 3"; "a 1"; "a 2"; "a 3"; "stop a"; "stop b" ]
    (List.rev !log)

(* -- a node process ------------------------------------------------------------------ *)

let node_exe = Filename.concat (Filename.concat (Sys.getcwd ()) "../example") "bus_node.exe"

let write_plan json =
  let path = Filename.concat (Lazy.force tmpdir) (fresh "plan" ^ ".json") in
  Yojson.Safe.to_file path json;
  path

let plan ~services ?(inbound = `Null) ?(links = []) ?(extra = []) () =
  `Assoc
    ([
      ("version", `Int 1);
      ("topology", `String "/test/topology.toml");
      ("node", `String "ocnode");
      ("language", `String "ocaml");
      ("schema", `Assoc [ ("path", `String "schemas/trading.toml"); ("digest", `String Trading.schema_digest_hex) ]);
      ("services", `List services);
      ("inbound", inbound);
      ("links", `List links);
    ]
    @ extra)

let read_all fd =
  let b = Buffer.create 256 and chunk = Bytes.create 4096 in
  let rec go () =
    match Unix.read fd chunk 0 4096 with
    | 0 -> ()
    | k ->
        Buffer.add_subbytes b chunk 0 k;
        go ()
    | exception Unix.Unix_error (Unix.EINTR, _, _) -> go ()
  in
  go ();
  Buffer.contents b

(* Run bus_node.exe on [plan_json]; [during pid] runs while it does;
   (exit status, stdout).  The child is always reaped. *)
let run_node plan_json during =
  let path = write_plan plan_json in
  let out_r, out_w = Unix.pipe ~cloexec:true () in
  let pid = Unix.create_process node_exe [| node_exe; "--plan"; path |] Unix.stdin out_w Unix.stderr in
  Unix.close out_w;
  let out = ref "" in
  let reader = Thread.create (fun () -> out := read_all out_r) () in
  let status =
    Fun.protect
      ~finally:(fun () -> (try Unix.kill pid Sys.sigkill with Unix.Unix_error _ -> ()))
      (fun () ->
        during pid;
        let d = Unix.gettimeofday () +. 30. in
        let rec wait () =
          match Unix.waitpid [ Unix.WNOHANG ] pid with
          | 0, _ ->
              if Unix.gettimeofday () > d then Alcotest.fail "node did not exit";
              Thread.delay 0.01;
              wait ()
          | _, st -> st
        in
        wait ())
  in
  (try ignore (Unix.waitpid [] pid) with Unix.Unix_error _ -> ());
  Thread.join reader;
  Unix.close out_r;
  (status, !out)

let test_sigterm_flushes tr () =
  with_channel @@ fun channel ->
  let rx = Bus.create ~digest () in
  let ep, endpoint =
    match tr with
    | Shm ->
        ( ok (Inbound.shm ~digest channel),
          `Assoc [ ("kind", `String "shm"); ("name", `String channel); ("capacity", `Int 1048576) ] )
    | Unix_sock ->
        let p = sock_path () in
        (ok (Inbound.socket ~digest (Sock.Unix_socket p)), `Assoc [ ("kind", `String "unix"); ("path", `String p) ])
    | Tcp -> (
        let ep = ok (Inbound.socket ~digest (Sock.Tcp ("127.0.0.1", 0))) in
        match Inbound.address ep with
        | Some (Sock.Tcp (_, port)) ->
            (ep, `Assoc [ ("kind", `String "tcp"); ("host", `String "127.0.0.1"); ("port", `Int port) ])
        | _ -> assert false)
  in
  Bus.add_inbound rx ep;
  let q = Bus.subscriber ~capacity:10_000_000 rx tick in
  Bus.start rx;
  Fun.protect ~finally:(fun () -> Bus.close rx) @@ fun () ->
  let services =
    [ `Assoc [ ("name", `String "ticker"); ("consumes", `List []); ("config", `Assoc [ ("count", `Int 0); ("interval_us", `Int 50) ]) ] ]
  in
  let links = [ `Assoc [ ("node", `String "test"); ("types", `List [ `String "MarketTick" ]); ("endpoint", endpoint) ] ] in
  let status, out =
    run_node (plan ~services ~links ()) (fun pid ->
        eventually "ticks" (fun () -> Subscriber.length q >= 200);
        Unix.kill pid Sys.sigterm;
        Unix.kill pid Sys.sigterm)
  in
  Alcotest.(check bool) "exit 0" true (status = Unix.WEXITED 0);
  let n = Scanf.sscanf (String.trim out) "published %d" Fun.id in
  Alcotest.(check bool) "published some" true (n >= 200);
  Alcotest.(check ints) "everything published arrived, in order" (range 1 n) (seqs (take_n q n));
  Thread.delay 0.05;
  Alcotest.(check int) "nothing more" 0 (Subscriber.length q)

let test_node_errors () =
  let status, _ =
    run_node
      (plan ~services:[ `Assoc [ ("name", `String "nope"); ("consumes", `List []); ("config", `Assoc []) ] ] ())
      ignore
  in
  Alcotest.(check bool) "unknown service: exit 2" true (status = Unix.WEXITED 2);
  Alcotest.(check string) "plan errors" "PlanError"
    (kind (Plan.of_json (`Assoc [ ("version", `Int 2) ])))


(* -- broadcast: one channel per publishing node, one cursor per consumer ------- *)

let cursor_named name c =
  match Mycelium_shm.Channel.cursors name with
  | Ok l -> List.find (fun (i : Mycelium_shm.Cursor.info) -> i.name = c) l
  | Error e -> Alcotest.failf "cursors: %s" (Mycelium_shm.Error.to_string e)

let frames_written name =
  match Mycelium_shm.Channel.inspect name with
  | Ok i -> i.Mycelium_shm.Info.stats.frames_written
  | Error e -> Alcotest.failf "inspect: %s" (Mycelium_shm.Error.to_string e)

let publication ?(subscribers = [ "a" ]) name =
  ok (Link.shm_publication ~capacity:(1 lsl 18) ~digest ~subscribers name)

(* A started bus reading [name] with cursor [node], and its tick queue. *)
let subscriber_node name node =
  let bus = Bus.create ~name:node ~digest () in
  let q = Bus.subscriber ~capacity:100_000 bus tick in
  Bus.add_inbound bus (ok (Inbound.shm_subscription ~digest ~cursor:node name));
  Bus.start bus;
  (bus, q)

let test_broadcast_one_write () =
  with_channel @@ fun name ->
  let feed = Bus.create ~name:"feed" ~digest () in
  Fun.protect ~finally:(fun () -> Bus.close feed) @@ fun () ->
  Bus.add_link feed (publication ~subscribers:[ "a"; "b"; "c" ] name) [ Trading.MarketTick.type_id ];
  let nodes = List.map (subscriber_node name) [ "a"; "b"; "c" ] in
  Fun.protect ~finally:(fun () -> List.iter (fun (b, _) -> Bus.close b) nodes) @@ fun () ->
  let n = 2000 in
  let p = Bus.publisher feed tick in
  for i = 1 to n do
    ok (Bus.publish p (mk i))
  done;
  List.iter
    (fun (b, q) -> Alcotest.(check ints) ("in order at " ^ Bus.name b) (range 1 n) (seqs (take_n q n)))
    nodes;
  Alcotest.(check int) "one write per publish" n (frames_written name);
  List.iter
    (fun c ->
      let i = cursor_named name c in
      Alcotest.(check (pair int int)) ("cursor " ^ c ^ " read all, lost none") (n, 0) (i.frames_read, i.lost);
      Alcotest.(check bool) "durable and tethered" true (i.durable && i.tethered))
    [ "a"; "b"; "c" ]

let test_broadcast_late_subscriber () =
  with_channel @@ fun name ->
  let feed = Bus.create ~name:"feed" ~digest () in
  Fun.protect ~finally:(fun () -> Bus.close feed) @@ fun () ->
  Bus.add_link feed (publication ~subscribers:[ "late" ] name) [ Trading.MarketTick.type_id ];
  let p = Bus.publisher feed tick in
  for i = 1 to 50 do
    ok (Bus.publish p (mk i))
  done;
  let late, q = subscriber_node name "late" in
  Fun.protect ~finally:(fun () -> Bus.close late) @@ fun () ->
  Alcotest.(check ints) "published before it started" (range 1 50) (seqs (take_n q 50));
  (* restarted: resumes at its cursor, no loss, no duplicate *)
  Bus.close late;
  for i = 51 to 60 do
    ok (Bus.publish p (mk i))
  done;
  let again, q = subscriber_node name "late" in
  Fun.protect ~finally:(fun () -> Bus.close again) @@ fun () ->
  Alcotest.(check ints) "resumed at its cursor" (range 51 60) (seqs (take_n q 10));
  Thread.delay 0.05;
  Alcotest.(check int) "no duplicate" 0 (Subscriber.length q)

let test_broadcast_waits_for_channel () =
  with_channel @@ fun name ->
  let node, q = subscriber_node name "node" in
  Fun.protect ~finally:(fun () -> Bus.close node) @@ fun () ->
  Thread.delay 0.05;
  let pub = publication ~subscribers:[ "node" ] name in
  for i = 1 to 5 do
    ok (Link.send pub ~type_id:Trading.MarketTick.type_id (Trading.MarketTick.encode (mk i)))
  done;
  Alcotest.(check ints) "after the channel appeared" (range 1 5) (seqs (take_n q 5));
  Link.close pub;
  Alcotest.(check string) "closed" "BusClosed" (kind (Link.send pub ~type_id:1 ""))

let test_broadcast_untethered_counts_lost () =
  with_channel @@ fun name ->
  let pub = ok (Link.shm_publication ~capacity:4096 ~untether:0.02 ~digest ~subscribers:[ "slow" ] name) in
  Fun.protect ~finally:(fun () -> Link.close pub) @@ fun () ->
  let n = 400 in
  for i = 1 to n do
    ok (Link.send pub ~type_id:Trading.MarketTick.type_id (Trading.MarketTick.encode (mk i)))
  done;
  let ep = ok (Inbound.shm_subscription ~digest ~cursor:"slow" name) in
  Fun.protect ~finally:(fun () -> Inbound.close ep) @@ fun () ->
  let got = ref [] in
  Inbound.start ep (fun type_id payload ->
      match Trading.MarketTick.decode payload with
      | Ok t when type_id = Trading.MarketTick.type_id -> got := Int64.to_int t.seq :: !got
      | _ -> Alcotest.fail "not a MarketTick");
  let stat k = List.assoc k (Inbound.stats ep) in
  eventually "every frame read or counted lost" (fun () ->
      stat "lost" > 0 && stat "frames" + stat "lost" = n && List.length !got = stat "frames");
  let got = List.rev !got in
  Alcotest.(check bool) "in order" true (List.sort_uniq compare got = got);
  Alcotest.(check int) "the last one" n (List.nth got (List.length got - 1));
  Alcotest.(check int) "as the cursor says" (cursor_named name "slow").lost (stat "lost")

(* A subscription that finds its cursor held by another live reader for a
   moment (here the test's own reader) tries again. *)
let test_broadcast_cursor_held_for_an_instant () =
  with_channel @@ fun name ->
  let pub = publication name in
  Fun.protect ~finally:(fun () -> Link.close pub) @@ fun () ->
  let holder =
    match Mycelium_shm.Reader.attach ~schema_digest:digest ~cursor:"a" name with
    | Ok r -> r
    | Error e -> Alcotest.failf "holder: %s" (Mycelium_shm.Error.to_string e)
  in
  let ep = ok (Inbound.shm_subscription ~digest ~cursor:"a" name) in
  Fun.protect ~finally:(fun () -> Inbound.close ep) @@ fun () ->
  let got = ref 0 in
  Inbound.start ep (fun _ _ -> incr got);
  ok (Link.send pub ~type_id:Trading.MarketTick.type_id (Trading.MarketTick.encode (mk 1)));
  Thread.delay 0.05;
  Mycelium_shm.Reader.close holder;
  eventually "the frame arrives once the cursor is free" (fun () -> !got = 1)

let test_broadcast_schema_mismatch () =
  with_channel @@ fun name ->
  let pub = publication name in
  Fun.protect ~finally:(fun () -> Link.close pub) @@ fun () ->
  Alcotest.(check string) "subscription refused" "SchemaMismatch"
    (kind (Inbound.shm_subscription ~digest:other_digest ~cursor:"a" name));
  Alcotest.(check string) "publication refused" "SchemaMismatch"
    (kind (Link.shm_publication ~digest:other_digest ~subscribers:[ "a" ] name));
  Alcotest.(check int) "nothing written" 0 (frames_written name)

let test_broadcast_plan () =
  let pub =
    `Assoc
      [
        ("kind", `String "shm-broadcast");
        ("name", `String "pipeline.feed");
        ("capacity", `Int 1048576);
        ("subscribers", `List [ `String "risk"; `String "strategy" ]);
        ("spare_readers", `Int 1);
        ("untether_ms", `Int 10000);
        ("types", `List [ `String "MarketTick"; `String "Stop" ]);
      ]
  in
  let subs = `List [ `Assoc [ ("node", `String "md"); ("name", `String "pipeline.md"); ("cursor", `String "feed") ] ] in
  let p = ok (Plan.of_json (plan ~services:[] ~extra:[ ("publication", pub); ("subscriptions", subs) ] ())) in
  (match p.publication with
  | Some { pub_name; pub_capacity; subscribers; spare_readers; untether_ms; pub_types } ->
      Alcotest.(check (list string)) "publication" [ "pipeline.feed"; "1048576"; "risk,strategy"; "1"; "10000"; "MarketTick,Stop" ]
        [ pub_name; string_of_int pub_capacity; String.concat "," subscribers; string_of_int spare_readers;
          string_of_int untether_ms; String.concat "," pub_types ]
  | None -> Alcotest.fail "no publication");
  Alcotest.(check (list (list string))) "subscriptions" [ [ "md"; "pipeline.md"; "feed" ] ]
    (List.map (fun (s : Plan.subscription) -> [ s.from_node; s.channel; s.cursor ]) p.subscriptions);
  let mailbox = ok (Plan.of_json (plan ~services:[] ~extra:[ ("publication", `Null); ("subscriptions", `List []) ] ())) in
  Alcotest.(check bool) "mailbox plan" true (mailbox.publication = None && mailbox.subscriptions = []);
  Alcotest.(check string) "bad kind" "PlanError"
    (kind (Plan.of_json (plan ~services:[] ~extra:[ ("publication", `Assoc [ ("kind", `String "shm") ]) ] ())))

(* The node (bus_node.exe) publishes on its broadcast channel from its plan;
   two subscribers get everything, one write per tick, and it exits 0. *)
let test_broadcast_node () =
  with_channel @@ fun name ->
  let count = 300 in
  let services =
    [ `Assoc [ ("name", `String "ticker"); ("consumes", `List []); ("config", `Assoc [ ("count", `Int count) ]) ] ]
  in
  let pub =
    `Assoc
      [
        ("kind", `String "shm-broadcast");
        ("name", `String name);
        ("capacity", `Int (1 lsl 18));
        ("subscribers", `List [ `String "x"; `String "y" ]);
        ("spare_readers", `Int 1);
        ("untether_ms", `Int 10000);
        ("types", `List [ `String "MarketTick" ]);
      ]
  in
  let nodes = List.map (subscriber_node name) [ "x"; "y" ] in
  Fun.protect ~finally:(fun () -> List.iter (fun (b, _) -> Bus.close b) nodes) @@ fun () ->
  let status, _ =
    run_node (plan ~services ~extra:[ ("publication", pub); ("subscriptions", `List []) ] ()) (fun pid ->
        List.iter (fun (_, q) -> eventually "ticks" (fun () -> Subscriber.length q >= count)) nodes;
        Unix.kill pid Sys.sigterm)
  in
  Alcotest.(check bool) "exit 0" true (status = Unix.WEXITED 0);
  List.iter (fun (b, q) -> Alcotest.(check ints) ("at " ^ Bus.name b) (range 1 count) (seqs (take_n q count))) nodes;
  Alcotest.(check int) "one write per tick" count (frames_written name)

let () =
  let per_transport name f =
    List.map (fun (tn, tr) -> Alcotest.test_case (name ^ " " ^ tn) `Quick (f tr)) transports
  in
  Alcotest.run "mycelium_bus"
    [
      ( "local",
        [
          Alcotest.test_case "delivery" `Quick test_local_delivery;
          Alcotest.test_case "two descriptors" `Quick test_two_descriptors;
          Alcotest.test_case "overflow" `Quick test_overflow;
        ] );
      ( "transports",
        per_transport "ocaml to ocaml" test_transport
        @ per_transport "link before peer" test_link_before_peer
        @ per_transport "schema mismatch" test_schema_mismatch
        @ [
            Alcotest.test_case "hostile frames" `Quick test_hostile_frames;
            Alcotest.test_case "churn: memory and threads bounded" `Quick test_churn_memory;
            Alcotest.test_case "bad frames: log bounded" `Quick test_bad_frames_log_bounded;
            Alcotest.test_case "squatters: refusals logged, idle dropped" `Quick test_squatters;
          ] );
      ( "services",
        [
          Alcotest.test_case "restart" `Quick test_restart;
          Alcotest.test_case "drain order" `Quick test_drain_order;
        ] );
      ("node", per_transport "sigterm flushes" test_sigterm_flushes @ [ Alcotest.test_case "errors" `Quick test_node_errors ]);
      ( "broadcast",
        [
          Alcotest.test_case "one write, three subscribers" `Quick test_broadcast_one_write;
          Alcotest.test_case "late and restarted subscriber" `Quick test_broadcast_late_subscriber;
          Alcotest.test_case "subscription waits for the channel" `Quick test_broadcast_waits_for_channel;
          Alcotest.test_case "untethered subscriber counts lost" `Quick test_broadcast_untethered_counts_lost;
          Alcotest.test_case "cursor held for an instant" `Quick test_broadcast_cursor_held_for_an_instant;
          Alcotest.test_case "schema mismatch" `Quick test_broadcast_schema_mismatch;
          Alcotest.test_case "plan keys" `Quick test_broadcast_plan;
          Alcotest.test_case "node publishes from its plan" `Quick test_broadcast_node;
        ] );
    ]
