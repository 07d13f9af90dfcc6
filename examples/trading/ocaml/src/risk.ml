open Trading_messages
module Service = Mycelium_bus.Service
module Bus = Mycelium_bus.Bus

let reasons = [ "qty"; "collar"; "rate"; "position"; "notional" ]

type config = {
  max_order_qty : int;
  max_position : int;
  max_gross_pips : int;
  collar_pips : int;
  max_orders : int;
  window_ticks : int;
}

type state = {
  cfg : config;
  audit : out_channel;
  position : (string, int) Hashtbl.t;
  ref_pips : (string, int) Hashtbl.t;
  recent : int64 Queue.t;  (** tick_seq of the approved orders in the window *)
  queue : (Trading.Signal.t * int) Queue.t;
      (** signals waiting for the order in flight, with their arrival time *)
  mutable hop_ns : int list;  (** tick to arrival here, per signal *)
  mutable wait_ns : int list;  (** time in the queue, per signal *)
  mutable in_flight : int64 option;
  mutable end_ : int64 option;
  mutable next_order_id : int64;
  mutable signals : int;
  rejected : (string, int) Hashtbl.t;
}

let get tbl key = Option.value (Hashtbl.find_opt tbl key) ~default:0

(* Sum of |position| x reference price (pips), [symbol] at [new_position]. *)
let gross st symbol new_position =
  let total =
    Hashtbl.fold
      (fun sym pos acc ->
        acc + (abs (if sym = symbol then new_position else pos) * Hashtbl.find st.ref_pips sym))
      st.position 0
  in
  if Hashtbl.mem st.position symbol then total
  else total + (abs new_position * Hashtbl.find st.ref_pips symbol)

let check st (s : Trading.Signal.t) =
  let c = st.cfg in
  if s.qty < 1 || s.qty > c.max_order_qty then Some "qty"
  else if abs (Sim.pips s.limit_price - Hashtbl.find st.ref_pips s.symbol) > c.collar_pips then
    Some "collar"
  else (
    while
      (not (Queue.is_empty st.recent))
      && Int64.compare (Int64.add (Queue.peek st.recent) (Int64.of_int c.window_ticks)) s.tick_seq
         <= 0
    do
      ignore (Queue.pop st.recent)
    done;
    if Queue.length st.recent >= c.max_orders then Some "rate"
    else
      let new_position = get st.position s.symbol + (s.side * s.qty) in
      if abs new_position > c.max_position then Some "position"
      else if gross st s.symbol new_position > c.max_gross_pips then Some "notional"
      else None)

let service ctx =
  let ( let* ) = Result.bind in
  let int key default = Service.Config.int ctx key ~default in
  let* max_order_qty = int "max_order_qty" 5 in
  let* max_position = int "max_position" 12 in
  let* max_gross = Service.Config.float ctx "max_gross_notional" ~default:25.0 in
  let* collar_pips = int "collar_pips" 3 in
  let* max_orders = int "max_orders" 40 in
  let* window_ticks = int "window_ticks" 300 in
  let* audit_dir = Service.Config.string ctx "audit_dir" ~default:"audit" in
  let* audit = Sim.open_audit audit_dir "risk.log" in
  let cfg =
    {
      max_order_qty;
      max_position;
      max_gross_pips = Sim.pips max_gross;
      collar_pips;
      max_orders;
      window_ticks;
    }
  in
  let st =
    {
      cfg;
      audit;
      position = Hashtbl.create 8;
      ref_pips = Hashtbl.create 8;
      recent = Queue.create ();
      queue = Queue.create ();
      hop_ns = [];
      wait_ns = [];
      in_flight = None;
      end_ = None;
      next_order_id = 1L;
      signals = 0;
      rejected = Hashtbl.create 8;
    }
  in
  Sim.register "risk";
  let orders = Service.publisher ctx Sim.order_request in
  let ends = Service.publisher ctx Sim.end_of_orders in
  let decide (s : Trading.Signal.t) =
    Hashtbl.replace st.ref_pips s.symbol (Sim.pips s.ref_price);
    let decision =
      match check st s with
      | None ->
          let order_id = st.next_order_id in
          st.next_order_id <- Int64.succ order_id;
          st.in_flight <- Some order_id;
          Queue.push s.tick_seq st.recent;
          Bus.publish_exn orders
            {
              Trading.OrderRequest.order_id;
              symbol = s.symbol;
              side = s.side;
              qty = s.qty;
              limit_price = s.limit_price;
              tick_seq = s.tick_seq;
              tick_ts_ns = s.tick_ts_ns;
            };
          Printf.sprintf "APPROVE %Lu" order_id
      | Some reason ->
          Hashtbl.replace st.rejected reason (get st.rejected reason + 1);
          "REJECT " ^ reason
    in
    let pos = get st.position s.symbol in
    Printf.fprintf st.audit "%Lu %s %+d %d %.5f %s pos=%d gross=%d\n" s.tick_seq s.symbol s.side
      s.qty s.limit_price decision pos (gross st s.symbol pos)
  in
  let finish announced =
    if Int64.to_int announced <> st.signals then
      Mycelium_bus.Log.err "service %s: EndOfSignals says %Lu signals, %d arrived"
        (Service.name ctx) announced st.signals;
    st.end_ <- None;
    let approved = Int64.pred st.next_order_id in
    Bus.publish_exn ends { Trading.EndOfOrders.count = approved };
    Printf.fprintf st.audit "END signals=%d approved=%Lu %s\n" st.signals approved
      (String.concat " "
         (List.map (fun r -> Printf.sprintf "%s=%d" r (get st.rejected r)) reasons));
    close_out st.audit;
    Sim.emit "RISK"
      (`Assoc
        [
          ("signals", `Int st.signals);
          ("approved", `Intlit (Int64.to_string approved));
          ("rejected", `Assoc (List.map (fun r -> (r, `Int (get st.rejected r))) reasons));
          ("tick_to_risk_us", Sim.percentiles st.hop_ns);
          ("queue_wait_us", Sim.percentiles st.wait_ns);
        ]);
    if Sim.finished "risk" then Service.request_stop ctx
  in
  let rec work () =
    if st.in_flight = None && not (Queue.is_empty st.queue) then (
      let s, arrived = Queue.pop st.queue in
      st.wait_ns <- (Sim.monotonic_ns () - arrived) :: st.wait_ns;
      decide s;
      work ())
    else
      match (st.in_flight, st.end_) with None, Some announced -> finish announced | _ -> ()
  in
  Ok
    (Service.make
       ~on_stop:(fun () -> close_out_noerr st.audit)
       [
         Service.handle Sim.signal (fun (s : Trading.Signal.t) ->
             let now = Sim.monotonic_ns () in
             st.signals <- st.signals + 1;
             st.hop_ns <- (now - Int64.to_int s.tick_ts_ns) :: st.hop_ns;
             Queue.push (s, now) st.queue;
             work ());
         Service.handle Sim.fill (fun (f : Trading.Fill.t) ->
             if f.qty > 0 then
               Hashtbl.replace st.position f.symbol (get st.position f.symbol + (f.side * f.qty));
             if f.last && st.in_flight = Some f.order_id then (
               st.in_flight <- None;
               work ()));
         Service.handle Sim.end_of_signals (fun (e : Trading.EndOfSignals.t) ->
             st.end_ <- Some e.count;
             work ());
       ])
