open Mycelium_bus

let tick = Msg.v (module Trading.MarketTick)
let stop = Msg.v (module Trading.Stop)
let out_lock = Mutex.create ()

let say fmt =
  Printf.ksprintf
    (fun s ->
      Mutex.lock out_lock;
      print_endline s;
      Mutex.unlock out_lock)
    fmt

let ( let* ) = Result.bind

let ticker ctx =
  let* count = Service.Config.int ctx "count" ~default:0 in
  let* interval_us = Service.Config.int ctx "interval_us" ~default:0 in
  let* symbol = Service.Config.string ctx "symbol" ~default:"EURUSD" in
  let ticks = Service.publisher ctx tick and stops = Service.publisher ctx stop in
  let published = ref 0 in
  let run () =
    let rec loop seq =
      if (count = 0 || seq <= count) && not (Service.stopping ctx) then (
        let t =
          {
            Trading.MarketTick.symbol;
            seq = Int64.of_int seq;
            ts_ns = Int64.of_float (Unix.gettimeofday () *. 1e9);
            bid = 1.0842;
            ask = 1.0844;
            bid_size = 1_000_000;
            ask_size = 2_500_000;
          }
        in
        match Bus.publish ticks t with
        | Ok () ->
            published := seq;
            if interval_us > 0 then Thread.delay (float_of_int interval_us /. 1e6);
            loop (seq + 1)
        | Error e ->
            Service.log ctx "publishing failed: %s" (Bus_error.to_string e);
            Service.request_stop ctx)
      else if count > 0 && !published = count then (
        (match Bus.publish stops { Trading.Stop.last_seq = Int64.of_int count; reason = "done" } with
        | Ok () -> ()
        | Error e -> Service.log ctx "publishing Stop failed: %s" (Bus_error.to_string e));
        Service.request_stop ctx)
    in
    loop 1
  in
  Ok (Service.make ~on_start:run ~on_stop:(fun () -> say "published %d" !published) [])

let counter ctx =
  let* exit_on_stop = Service.Config.bool ctx "exit_on_stop" ~default:true in
  let n = ref 0 in
  Ok
    (Service.make
       ~on_stop:(fun () -> say "counted %d" !n)
       [
         Service.handle tick (fun t ->
             incr n;
             say "tick %Ld %s" t.Trading.MarketTick.seq t.symbol);
         Service.handle stop (fun s ->
             say "stop %Ld" s.Trading.Stop.last_seq;
             if exit_on_stop then Service.request_stop ctx);
       ])

let crasher ctx =
  let* fail_every = Service.Config.int ctx "fail_every" ~default:5 in
  Ok
    (Service.make
       ~on_start:(fun () -> say "start")
       [
         Service.handle tick (fun t ->
             let seq = Int64.to_int t.Trading.MarketTick.seq in
             if seq mod fail_every = 0 then failwith (Printf.sprintf "crasher: tick %d" seq);
             say "handled %d" seq);
       ])

let () =
  Node.main (module Trading) [ ("ticker", ticker); ("counter", counter); ("crasher", crasher) ]
