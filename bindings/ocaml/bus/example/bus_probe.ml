open Mycelium_bus

let ts_base = 1_700_000_000_000_000_000L
let u32_max = 4294967295
let ( let* ) = Result.bind

(* One whole line per write(2), so a reader never sees half a line. *)
let append path line =
  let fd = Unix.openfile path [ Unix.O_WRONLY; Unix.O_APPEND; Unix.O_CREAT ] 0o644 in
  Fun.protect
    ~finally:(fun () -> Unix.close fd)
    (fun () ->
      let n = String.length line in
      let written = Unix.write_substring fd line 0 n in
      if written <> n then failwith (Printf.sprintf "%s: short write (%d of %d)" path written n))

(* What the probe needs of a schema's MarketTick (both schemas have the same
   fields, in different generated modules). *)
module type TICK = sig
  type t

  val descriptor : t Msg.t

  val make :
    symbol:string -> seq:int64 -> ts_ns:int64 -> bid:float -> ask:float -> bid_size:int -> ask_size:int -> t

  val line : t -> string
  val seq : t -> int64
end

module Probe (T : TICK) = struct
  let send ctx =
    let* count = Service.Config.int ctx "count" in
    let* symbol = Service.Config.string ctx "symbol" in
    let* out = Service.Config.string ctx "out" in
    let ticks = Service.publisher ctx T.descriptor in
    let run () =
      let rec loop i =
        if i = count then append out (Printf.sprintf "sent %d\n" count)
        else
          let bid = 1.0 +. (float_of_int i /. 1024.0) in
          let t =
            T.make ~symbol ~seq:(Int64.of_int i)
              ~ts_ns:(Int64.add ts_base (Int64.of_int i))
              ~bid ~ask:(bid +. 0.25) ~bid_size:i ~ask_size:(u32_max - i)
          in
          match Bus.publish ticks t with
          | Ok () -> loop (i + 1)
          | Error e -> Service.log ctx "publishing tick %d failed: %s" i (Bus_error.to_string e)
      in
      loop 0
    in
    Ok (Service.make ~on_start:run [])

  let recv ctx =
    let* out = Service.Config.string ctx "out" in
    let* panic_at = Service.Config.int ctx "panic_at" ~default:(-1) in
    Ok
      (Service.make
         [
           Service.handle T.descriptor (fun t ->
               if Int64.to_int (T.seq t) = panic_at then
                 failwith (Printf.sprintf "recv: told to fail at seq %Lu" (T.seq t));
               append out (T.line t));
         ])

  let registry = [ ("send", send); ("recv", recv) ]
end

module Trading_probe = Probe (struct
  type t = Trading.MarketTick.t

  let descriptor = Msg.v (module Trading.MarketTick)

  let make ~symbol ~seq ~ts_ns ~bid ~ask ~bid_size ~ask_size =
    { Trading.MarketTick.symbol; seq; ts_ns; bid; ask; bid_size; ask_size }

  let line (t : t) =
    Printf.sprintf "tick %s %Lu %Ld %.17g %.17g %d %d\n" t.symbol t.seq t.ts_ns t.bid t.ask t.bid_size
      t.ask_size

  let seq (t : t) = t.seq
end)

module Vectors_probe = Probe (struct
  type t = Schema.MarketTick.t

  let descriptor = Msg.v (module Schema.MarketTick)

  let make ~symbol ~seq ~ts_ns ~bid ~ask ~bid_size ~ask_size =
    { Schema.MarketTick.symbol; seq; ts_ns; bid; ask; bid_size; ask_size }

  let line (t : t) =
    Printf.sprintf "tick %s %Lu %Ld %.17g %.17g %d %d\n" t.symbol t.seq t.ts_ns t.bid t.ask t.bid_size
      t.ask_size

  let seq (t : t) = t.seq
end)

(* The plan's path as Node.main finds it (--plan PATH, --plan=PATH, or
   MYCELIUM_BUS_PLAN). *)
let plan_path () =
  let rec find = function
    | "--plan" :: p :: _ -> Some p
    | a :: rest ->
        let pre = "--plan=" in
        let n = String.length pre in
        if String.length a > n && String.sub a 0 n = pre then Some (String.sub a n (String.length a - n))
        else find rest
    | [] -> None
  in
  match find (List.tl (Array.to_list Sys.argv)) with
  | Some p -> Some p
  | None -> Sys.getenv_opt "MYCELIUM_BUS_PLAN"

(* Run with the schema the plan names; any other digest (or an unreadable
   plan) goes to Node.main with trading's, which reports it and exits 2. *)
let () =
  let digest =
    match plan_path () with
    | None -> None
    | Some path -> ( match Plan.load path with Ok plan -> Some plan.Plan.digest_hex | Error _ -> None)
  in
  if digest = Some Schema.schema_digest_hex then Node.main (module Schema) Vectors_probe.registry
  else Node.main (module Trading) Trading_probe.registry
