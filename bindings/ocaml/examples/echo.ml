(* Echo peer: reads messages from a request channel, transforms each one and
   writes it to a reply channel, until a Stop message.  The same program as
   bindings/rust/examples/echo.rs:

     echo.exe REQUEST REPLY [--schema trading|vectors | --digest HEX]

   Both channels must exist; the echo attaches as the reader of REQUEST and a
   writer of REPLY, both with the schema's digest (a channel of another
   schema is refused: exit status 2, "SchemaMismatch" on stderr).

   The transformation, applied to the decoded message before re-encoding:
     MarketTick    seq + 1 (wrapping)
     Signal        tick_seq + 1 (wrapping)
     OrderRequest  order_id + 1 (wrapping)
     Fill          order_id + 1 (wrapping)
     Stop          none; echoed, then the echo exits 0
     any other     none (decoded and re-encoded as is)
   A payload that does not decode is reported on stderr
   ("decode error: <kind>: ...") and answered with nothing; the echo goes on. *)

open Mycelium_shm
module E = Example_common

let usage_text = "echo REQUEST REPLY [--schema trading|vectors | --digest HEX]"

(* [(type_id, payload), stop] of the reply, or the decode error. *)
let trading_rule id payload =
  let open Trading in
  Result.map
    (fun m ->
      let m, stop =
        match m with
        | MarketTick t -> (MarketTick { t with seq = Int64.succ t.seq }, false)
        | Signal s -> (Signal { s with tick_seq = Int64.succ s.tick_seq }, false)
        | OrderRequest o -> (OrderRequest { o with order_id = Int64.succ o.order_id }, false)
        | Fill f -> (Fill { f with order_id = Int64.succ f.order_id }, false)
        | Stop _ -> (m, true)
      in
      (encode m, stop))
    (decode ~type_id:id payload)

let vectors_rule id payload =
  let open Schema in
  Result.map
    (fun m ->
      let m, stop =
        match m with
        | MarketTick t -> (MarketTick { t with seq = Int64.succ t.seq }, false)
        | Signal s -> (Signal { s with tick_seq = Int64.succ s.tick_seq }, false)
        | OrderRequest o -> (OrderRequest { o with order_id = Int64.succ o.order_id }, false)
        | Fill f -> (Fill { f with order_id = Int64.succ f.order_id }, false)
        | Stop _ -> (m, true)
        | other -> (other, false)
      in
      (encode m, stop))
    (decode ~type_id:id payload)

let () =
  let args = E.parse usage_text in
  let request, reply =
    match args.E.positional with [ a; b ] -> (a, b) | _ -> E.usage usage_text
  in
  let rule =
    match E.opt args "schema" with Some "vectors" -> vectors_rule | _ -> trading_rule
  in
  let schema_digest = E.digest args usage_text in
  let requests =
    match Reader.attach ~schema_digest request with
    | Ok r -> r
    | Error e -> E.die "attach request channel" e
  in
  let replies =
    match Writer.attach ~schema_digest reply with
    | Ok w -> w
    | Error e -> E.die "attach reply channel" e
  in
  let answered = ref 0 in
  let rec loop () =
    match Reader.read requests with
    | Error { Error.code = Error.Interrupted; _ } -> loop ()
    | Error e -> E.die "read request" e
    | Ok { Reader.type_id; payload } -> (
        match rule type_id payload with
        | Error e ->
            prerr_endline ("decode error: " ^ Mycelium_codec.error_to_string e);
            loop ()
        | Ok ((id, out), stop) ->
            (match Writer.write replies ~type_id:id out with
            | Ok () -> ()
            | Error e -> E.die "write reply" e);
            incr answered;
            if not stop then loop ())
  in
  loop ();
  Printf.eprintf "echo: answered %d messages\n%!" !answered;
  Writer.close replies;
  Reader.close requests
