(* The language-neutral vectors of tests/vectors/ (see its README.md): every
   valid case decodes to its fields and its fields encode to its bytes; every
   invalid case is refused with its error kind; the digest is the same. *)

module C = Mycelium_codec
module J = Yojson.Safe

let vectors_dir () =
  match Sys.getenv_opt "MYCELIUM_VECTORS" with
  | Some d -> d
  | None ->
      let rec up dir =
        let cand = Filename.concat dir "tests/vectors" in
        if Sys.file_exists (Filename.concat cand "valid.json") then cand
        else
          let parent = Filename.dirname dir in
          if parent = dir then failwith "tests/vectors not found; set MYCELIUM_VECTORS"
          else up parent
      in
      up (Sys.getcwd ())

let load name = J.from_file (Filename.concat (vectors_dir ()) name)
let member k j = J.Util.member k j

let hex_decode h =
  String.init (String.length h / 2) (fun i ->
      Char.chr (int_of_string ("0x" ^ String.sub h (2 * i) 2)))

let hex_encode s =
  String.concat "" (List.init (String.length s) (fun i -> Printf.sprintf "%02x" (Char.code s.[i])))

(* JSON (README conventions) -> value, guided by the wire type. *)
let rec value_of_json ty (j : J.t) : C.value =
  match (ty, j) with
  | C.T_bool, `Bool b -> C.Bool b
  | (C.T_u8 | C.T_u16 | C.T_u32 | C.T_i8 | C.T_i16 | C.T_i32), `Int n -> C.Int n
  | C.T_u64, `String s -> C.Int64 (Int64.of_string ("0u" ^ s))
  | C.T_i64, `String s -> C.Int64 (Int64.of_string s)
  | C.T_f32, `String s -> C.Float (Int32.float_of_bits (Int32.of_string s))
  | C.T_f64, `String s -> C.Float (Int64.float_of_bits (Int64.of_string s))
  | C.T_str, `String s -> C.String s
  | (C.T_bytes | C.T_fixed _), `String h -> C.String (hex_decode h)
  | C.T_array t, `List l -> C.Array (Array.of_list (List.map (value_of_json t) l))
  | C.T_message name, `Assoc _ -> record_of_json name j
  | _ -> Alcotest.failf "JSON value %s does not fit its type" (J.to_string j)

and record_of_json name j =
  C.Record
    (List.map (fun (f, ty) -> (f, value_of_json ty (member f j))) (Schema.fields name))

(* value -> JSON (README conventions), guided by the wire type. *)
let rec json_of_value ty (v : C.value) : J.t =
  match (ty, v) with
  | C.T_bool, C.Bool b -> `Bool b
  | _, C.Int n -> `Int n
  | C.T_u64, C.Int64 n -> `String (Printf.sprintf "%Lu" n)
  | C.T_i64, C.Int64 n -> `String (Printf.sprintf "%Ld" n)
  | C.T_f32, C.Float f -> `String (Printf.sprintf "0x%08lx" (Int32.bits_of_float f))
  | C.T_f64, C.Float f -> `String (Printf.sprintf "0x%016Lx" (Int64.bits_of_float f))
  | C.T_str, C.String s -> `String s
  | (C.T_bytes | C.T_fixed _), C.String s -> `String (hex_encode s)
  | C.T_array t, C.Array a -> `List (Array.to_list (Array.map (json_of_value t) a))
  | C.T_message name, C.Record fs ->
      `Assoc (List.map2 (fun (f, ty) (f', v) -> assert (f = f'); (f, json_of_value ty v))
                (Schema.fields name) fs)
  | _ -> Alcotest.fail "value does not fit its type"

let json = Alcotest.testable (fun ppf j -> Format.pp_print_string ppf (J.to_string j)) J.equal

let valid_case case () =
  let str k = J.Util.to_string (member k case) in
  let name = str "message" and type_id = J.Util.to_int (member "type_id" case) in
  let payload = hex_decode (str "hex") and fields = member "fields" case in
  Alcotest.(check int) "type id of the name" type_id (List.assoc name Schema.messages);
  (* bytes -> fields *)
  (match Schema.decode ~type_id payload with
  | Error e -> Alcotest.failf "decode refused: %s" (C.error_to_string e)
  | Ok m ->
      Alcotest.(check string) "message name" name (Schema.name m);
      Alcotest.check json "decoded fields" fields
        (json_of_value (C.T_message name) (Schema.to_value m)));
  (* fields -> bytes *)
  let m = Schema.of_value name (record_of_json name fields) in
  let id, bytes = Schema.encode m in
  Alcotest.(check int) "encoded type id" type_id id;
  Alcotest.(check string) "encoded bytes" (str "hex") (hex_encode bytes)

let invalid_case case () =
  let type_id = J.Util.to_int (member "type_id" case) in
  let payload = hex_decode (J.Util.to_string (member "hex" case)) in
  let want = J.Util.to_string (member "error" case) in
  match Schema.decode ~type_id payload with
  | Ok _ -> Alcotest.failf "decoded; expected a %s error" want
  | Error e -> Alcotest.(check string) ("error kind of " ^ e.C.message) want (C.kind_name e.C.kind)

let cases file =
  J.Util.to_list (member "cases" (load file))
  |> List.map (fun c -> (J.Util.to_string (member "name" c), c))

let test_digest () =
  Alcotest.(check string) "digest of tests/vectors/schema.toml"
    (J.Util.to_string (member "digest" (load "valid.json")))
    Schema.schema_digest_hex;
  Alcotest.(check int) "digest bytes" 32 (String.length Schema.schema_digest);
  Alcotest.(check string) "hex of the bytes" Schema.schema_digest_hex
    (hex_encode Schema.schema_digest)

let raises_invalid what f =
  match f () with
  | _ -> Alcotest.failf "%s: encoded, expected Invalid_argument" what
  | exception Invalid_argument _ -> ()

let tick =
  {
    Schema.MarketTick.symbol = "EURUSD"; seq = 1L; ts_ns = 0L; bid = 1.0; ask = 1.5;
    bid_size = 1; ask_size = 2;
  }

let test_encode_checks () =
  raises_invalid "u32 above range" (fun () ->
      Schema.MarketTick.encode { tick with bid_size = 1 lsl 32 });
  raises_invalid "u32 negative" (fun () -> Schema.MarketTick.encode { tick with ask_size = -1 });
  raises_invalid "invalid UTF-8 str" (fun () ->
      Schema.MarketTick.encode { tick with symbol = "\xff" });
  raises_invalid "surrogate in str" (fun () ->
      Schema.Text.encode { Schema.Text.s = "\xed\xa0\x80" });
  raises_invalid "bytes[4] of 3 bytes" (fun () ->
      Schema.Fill.encode
        { Schema.Fill.order_id = 1L; venue = "abc"; qty = 1; price = 0.; fee = 0.; ts_ns = 0L });
  raises_invalid "f32 overflow" (fun () ->
      Schema.Signal.encode
        { Schema.Signal.strategy_id = 1; symbol = ""; tick_seq = 0L; side = 0; strength = 1e39;
          features = [||] });
  raises_invalid "f32 array element overflow" (fun () ->
      Schema.Signal.encode
        { Schema.Signal.strategy_id = 1; symbol = ""; tick_seq = 0L; side = 0; strength = 0.;
          features = [| 1.0; -1e300 |] });
  (* Infinities and NaN are values of f32: accepted. *)
  ignore
    (Schema.Signal.encode
       { Schema.Signal.strategy_id = 1; symbol = ""; tick_seq = 0L; side = 0;
         strength = Float.infinity; features = [| Float.nan; Float.neg_infinity |] });
  raises_invalid "i8 array element" (fun () ->
      Schema.Signal.encode
        { Schema.Signal.strategy_id = 1; symbol = ""; tick_seq = 0L; side = 128; strength = 0.;
          features = [||] })

let test_roundtrip_trading () =
  (* The generated trading module agrees with the vector schema's copy of it. *)
  let t =
    { Trading.MarketTick.symbol = "EURUSD"; seq = 7L; ts_ns = -1L; bid = 1.25; ask = nan;
      bid_size = 3; ask_size = 0xFFFF_FFFF }
  in
  let id, payload = Trading.encode (Trading.MarketTick t) in
  Alcotest.(check int) "type id" 1 id;
  (match Schema.decode ~type_id:id payload with
  | Ok (Schema.MarketTick m) -> Alcotest.(check int64) "seq" 7L m.Schema.MarketTick.seq
  | _ -> Alcotest.fail "the vector schema does not decode it");
  match Trading.decode ~type_id:id payload with
  | Ok (Trading.MarketTick m) ->
      Alcotest.(check int) "ask_size" 0xFFFF_FFFF m.ask_size;
      Alcotest.(check bool) "NaN kept" true (Float.is_nan m.ask)
  | _ -> Alcotest.fail "decode failed"

let test_utf8 () =
  let ok = [ ""; "a"; "\xc2\x80"; "\xe0\xa0\x80"; "\xef\xbf\xbf"; "\xf0\x90\x80\x80"; "\xf4\x8f\xbf\xbf" ] in
  let bad = [ "\x80"; "\xc0\x80"; "\xc1\xbf"; "\xe0\x80\x80"; "\xed\xa0\x80"; "\xf0\x80\x80\x80";
              "\xf4\x90\x80\x80"; "\xf5\x80\x80\x80"; "\xe2\x82"; "\xff" ] in
  List.iter (fun s -> Alcotest.(check bool) (String.escaped s) true (C.is_valid_utf8 s)) ok;
  List.iter (fun s -> Alcotest.(check bool) (String.escaped s) false (C.is_valid_utf8 s)) bad

let () =
  Alcotest.run "vectors"
    [
      ("valid", List.map (fun (n, c) -> Alcotest.test_case n `Quick (valid_case c)) (cases "valid.json"));
      ("invalid", List.map (fun (n, c) -> Alcotest.test_case n `Quick (invalid_case c)) (cases "invalid.json"));
      ( "schema",
        [
          Alcotest.test_case "digest" `Quick test_digest;
          Alcotest.test_case "encode checks" `Quick test_encode_checks;
          Alcotest.test_case "trading module" `Quick test_roundtrip_trading;
          Alcotest.test_case "utf8" `Quick test_utf8;
        ] );
    ]
