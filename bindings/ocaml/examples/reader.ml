(* Reader of a multi-writer run: attaches as the reader of CHANNEL, reads
   MarketTicks until it has seen STOPS Stop messages, and checks that every
   writer's ticks arrive in order with none lost or duplicated.  The same
   program as bindings/rust/examples/reader.rs:

     reader.exe CHANNEL STOPS [--timeout-ms MS] [--schema trading | --digest HEX]

   Writers are told apart by the tick's symbol; each writer's seq must run
   0, 1, 2, ... and its Stop must name the last seq it sent.  Prints one JSON
   line to stdout: {"frames": N, "writers": {"w0": COUNT, ...}, "errors":
   [..]} and exits 0 when errors is empty, 3 otherwise, 2 on a channel error
   (for instance SchemaMismatch, or no frame within the timeout, default
   30 s). *)

open Mycelium_shm
module E = Example_common

let usage_text = "reader CHANNEL STOPS [--timeout-ms MS] [--schema trading | --digest HEX]"

let json_str s =
  let b = Buffer.create (String.length s + 2) in
  Buffer.add_char b '"';
  String.iter
    (fun c ->
      match c with
      | '"' -> Buffer.add_string b "\\\""
      | '\\' -> Buffer.add_string b "\\\\"
      | c when Char.code c < 0x20 -> Buffer.add_string b (Printf.sprintf "\\u%04x" (Char.code c))
      | c -> Buffer.add_char b c)
    s;
  Buffer.add_char b '"';
  Buffer.contents b

let () =
  let args = E.parse usage_text in
  let channel = match args.E.positional with [ c; _ ] -> c | _ -> E.usage usage_text in
  let stops_wanted = E.positional_int args 1 usage_text in
  let timeout_ms = E.int_opt args "timeout-ms" 30_000 usage_text in
  let schema_digest = E.digest args usage_text in
  let r =
    match Reader.attach ~schema_digest channel with Ok r -> r | Error e -> E.die "attach" e
  in
  let next : (string, int64) Hashtbl.t = Hashtbl.create 8 in
  let errors = ref [] in
  let error s = errors := s :: !errors in
  let frames = ref 0 and stops = ref 0 in
  while !stops < stops_wanted do
    match Reader.read ~timeout_ns:(timeout_ms * 1_000_000) r with
    | Error { Error.code = Error.Interrupted; _ } -> ()
    | Error { Error.code = Error.Empty; _ } ->
        E.die "read"
          {
            Error.code = Error.Full;
            message = Printf.sprintf "no frame within %d ms (%d stops seen)" timeout_ms !stops;
          }
    | Error e -> E.die "read" e
    | Ok { Reader.type_id; payload } -> (
        incr frames;
        match Trading.decode ~type_id payload with
        | Error e ->
            error (Printf.sprintf "frame %d: %s" (!frames - 1) (Mycelium_codec.error_to_string e))
        | Ok (Trading.MarketTick t) ->
            let expected = Option.value (Hashtbl.find_opt next t.symbol) ~default:0L in
            if t.seq <> expected then
              error (Printf.sprintf "%s: seq %Lu where %Lu was due" t.symbol t.seq expected);
            Hashtbl.replace next t.symbol (Int64.succ t.seq)
        | Ok (Trading.Stop s) ->
            incr stops;
            let sent = Option.value (Hashtbl.find_opt next s.reason) ~default:0L in
            if Int64.succ s.last_seq <> sent then
              error
                (Printf.sprintf "%s: stop says last_seq %Lu but %Lu ticks arrived" s.reason
                   s.last_seq sent)
        | Ok other -> error ("unexpected " ^ Trading.name other))
  done;
  let writers =
    Hashtbl.fold (fun k v acc -> (k, v) :: acc) next []
    |> List.sort compare
    |> List.map (fun (k, v) -> Printf.sprintf "%s: %Lu" (json_str k) v)
  in
  Printf.printf "{\"frames\": %d, \"writers\": {%s}, \"errors\": [%s]}\n%!" !frames
    (String.concat ", " writers)
    (String.concat ", " (List.rev_map json_str !errors));
  Reader.close r;
  exit (if !errors = [] then 0 else 3)
