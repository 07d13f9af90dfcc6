open Trading_messages
module Service = Mycelium_bus.Service

type state = {
  lot_units : float;
  audit : out_channel;
  filled : (int64, int) Hashtbl.t;  (** open orders: lots filled so far *)
  position : (string, int) Hashtbl.t;
  mutable cash : float;
  mutable fills : int;
  status : (string, int) Hashtbl.t;
  checksum : Sim.fnv;
}

let statuses = [ "cancelled"; "filled"; "partial" ]
let get tbl key = Option.value (Hashtbl.find_opt tbl key) ~default:0

let on_fill st (f : Trading.Fill.t) =
  st.fills <- st.fills + 1;
  Sim.fnv_update st.checksum (Sim.fill_record f);
  let done_ = get st.filled f.order_id + f.qty in
  Hashtbl.replace st.filled f.order_id done_;
  if f.qty > 0 then (
    Hashtbl.replace st.position f.symbol (get st.position f.symbol + (f.side * f.qty));
    st.cash <- st.cash -. (float_of_int (f.side * f.qty) *. st.lot_units *. f.price) -. f.fee;
    Printf.fprintf st.audit "%Lu order=%Lu %s %+d %d@%.5f fee=%.6f leaves=%d\n" f.exec_id f.order_id
      f.symbol f.side f.qty f.price f.fee f.leaves);
  if f.last then (
    Hashtbl.remove st.filled f.order_id;
    let status = if done_ = 0 then "cancelled" else if f.leaves = 0 then "filled" else "partial" in
    Hashtbl.replace st.status status (get st.status status + 1);
    Printf.fprintf st.audit "order %Lu %s %d/%d\n" f.order_id status done_ (done_ + f.leaves))

let on_end ctx st (e : Trading.EndOfFills.t) =
  if Int64.to_int e.count <> st.fills then
    Mycelium_bus.Log.err "service %s: EndOfFills says %Lu fills, %d arrived" (Service.name ctx)
      e.count st.fills;
  if Hashtbl.length st.filled > 0 then
    Mycelium_bus.Log.err "service %s: %d orders never got their last report"
      (Service.name ctx) (Hashtbl.length st.filled);
  let symbols = List.sort compare (Hashtbl.fold (fun s _ acc -> s :: acc) st.position []) in
  List.iter (fun s -> Printf.fprintf st.audit "position %s %d\n" s (get st.position s)) symbols;
  Printf.fprintf st.audit "END fills=%d cash=%.2f\n" st.fills st.cash;
  close_out st.audit;
  Sim.emit "OMS"
    (`Assoc
      [
        ("fills", `Int st.fills);
        ("fills_checksum", `String (Sim.fnv_hex st.checksum));
        ("orders", `Assoc (List.map (fun s -> (s, `Int (get st.status s))) statuses));
        ("positions", `Assoc (List.map (fun s -> (s, `Int (get st.position s))) symbols));
        ("cash", `Float (Float.round (st.cash *. 100.) /. 100.));
        ("open", `Int (Hashtbl.length st.filled));
      ]);
  if Sim.finished "oms" then Service.request_stop ctx

let service ctx =
  let ( let* ) = Result.bind in
  let* lot_units = Service.Config.float ctx "lot_units" ~default:100000.0 in
  let* audit_dir = Service.Config.string ctx "audit_dir" ~default:"audit" in
  let* audit = Sim.open_audit audit_dir "oms.log" in
  let st =
    {
      lot_units;
      audit;
      filled = Hashtbl.create 64;
      position = Hashtbl.create 8;
      cash = 0.0;
      fills = 0;
      status = Hashtbl.create 4;
      checksum = Sim.fnv ();
    }
  in
  Sim.register "oms";
  Ok
    (Service.make
       ~on_stop:(fun () -> close_out_noerr st.audit)
       [ Service.handle Sim.fill (on_fill st); Service.handle Sim.end_of_fills (on_end ctx st) ])
