(* One of several concurrent writers: writes COUNT sequence-numbered
   MarketTicks and then one Stop into CHANNEL.  The same program as
   bindings/rust/examples/writer.rs:

     writer.exe CHANNEL WRITER_ID COUNT [--batch N] [--create CAPACITY]
         [--schema trading | --digest HEX]

   The channel must exist, unless --create CAPACITY is given: then the writer
   creates it (a ring of CAPACITY bytes) and leaves it behind.  Frame i
   (0-based) of writer W is MarketTick { symbol = "w<W>"; seq = i; ts_ns = W;
   bid = i; ask = i + 0.5; bid_size = W; ask_size = 0 }; the last frame is
   Stop { last_seq = COUNT - 1; reason = "w<W>" } (for COUNT = 0, last_seq is
   2^64 - 1).  Writes block while the ring is full.  With --batch N, ticks go
   out N at a time through write_batch.  Prints "writer <W>: wrote <COUNT>
   ticks" to stderr; exit status 2 on a channel error. *)

open Mycelium_shm
module E = Example_common

let usage_text =
  "writer CHANNEL WRITER_ID COUNT [--batch N] [--create CAPACITY] [--schema trading | --digest \
   HEX]"

let tick w i =
  Trading.MarketTick.encode
    {
      Trading.MarketTick.symbol = Printf.sprintf "w%d" w;
      seq = Int64.of_int i;
      ts_ns = Int64.of_int w;
      bid = float_of_int i;
      ask = float_of_int i +. 0.5;
      bid_size = w;
      ask_size = 0;
    }

let () =
  let args = E.parse usage_text in
  let channel =
    match args.E.positional with [ c; _; _ ] -> c | _ -> E.usage usage_text
  in
  let w_id = E.positional_int args 1 usage_text in
  let count = E.positional_int args 2 usage_text in
  let batch = max 1 (E.int_opt args "batch" 1 usage_text) in
  let schema_digest = E.digest args usage_text in
  let w =
    match
      match E.opt args "create" with
      | None -> Writer.attach ~schema_digest channel
      | Some _ ->
          Writer.create ~schema_digest
            ~capacity:(E.int_opt args "create" 0 usage_text)
            channel
    with
    | Ok w -> w
    | Error e -> E.die "open" e
  in
  let id = Trading.MarketTick.type_id in
  let i = ref 0 in
  while !i < count do
    let n = min batch (count - !i) in
    if n = 1 then (
      (match Writer.write w ~type_id:id (tick w_id !i) with
      | Ok () -> ()
      | Error e -> E.die "write" e);
      incr i)
    else
      let rec send = function
        | [] -> ()
        | frames -> (
            match Writer.write_batch w frames with
            | Ok k ->
                i := !i + k;
                send (List.filteri (fun j _ -> j >= k) frames)
            | Error e -> E.die "write_batch" e)
      in
      send (List.init n (fun j -> (id, tick w_id (!i + j))))
  done;
  let stop =
    Trading.Stop.encode
      { Trading.Stop.last_seq = Int64.pred (Int64.of_int count); reason = Printf.sprintf "w%d" w_id }
  in
  (match Writer.write w ~type_id:Trading.Stop.type_id stop with
  | Ok () -> ()
  | Error e -> E.die "write stop" e);
  Printf.eprintf "writer %d: wrote %d ticks\n%!" w_id count;
  Writer.close w
