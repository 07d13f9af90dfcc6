open Mycelium_bus

let signal = Msg.v (module Trading.Signal)
let fill = Msg.v (module Trading.Fill)
let order = Msg.v (module Trading.OrderRequest)

(* [risk]: an order of [lot] lots per Signal, while |position| <= max_position. *)
let risk ctx =
  let ( let* ) = Result.bind in
  let* max_position = Service.Config.int ctx "max_position" ~default:100 in
  let* lot = Service.Config.int ctx "lot" ~default:10 in
  let orders = Service.publisher ctx order in
  let position = ref 0 and next_id = ref 0L and sides = Hashtbl.create 64 in
  let on_signal (s : Trading.Signal.t) =
    if s.side <> 0 && abs (!position + (s.side * lot)) <= max_position then begin
      next_id := Int64.succ !next_id;
      Hashtbl.replace sides !next_id s.side;
      Bus.publish_exn orders
        { Trading.OrderRequest.order_id = !next_id; symbol = s.symbol; side = s.side;
          qty = lot; limit_price = 0.0; ioc = true; ts_ns = 0L }
    end
  in
  let on_fill (f : Trading.Fill.t) =
    match Hashtbl.find_opt sides f.order_id with
    | Some side -> position := !position + (side * f.qty)
    | None -> Service.log ctx "fill for unknown order %Ld" f.order_id
  in
  Ok
    (Service.make
       ~on_stop:(fun () -> Service.log ctx "final position %d" !position)
       [ Service.handle signal on_signal; Service.handle fill on_fill ])

let () = Node.main (module Trading) [ ("risk", risk) ]
