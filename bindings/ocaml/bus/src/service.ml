type handler = Handler : 'a Msg.t * ('a -> unit) -> handler

let handle m f = Handler (m, f)

type t = { handlers : handler list; on_start : unit -> unit; on_stop : unit -> unit }

let make ?(on_start = ignore) ?(on_stop = ignore) handlers = { handlers; on_start; on_stop }

type context = {
  name : string;
  bus : Bus.t;
  config : Yojson.Safe.t;
  stopping : unit -> bool;
  request_stop : unit -> unit;
}

type factory = context -> (t, string) result

let context ~name ~bus ~config ~stopping ~request_stop = { name; bus; config; stopping; request_stop }
let name c = c.name
let bus c = c.bus
let config c = c.config
let publisher c m = Bus.publisher c.bus m
let stopping c = c.stopping ()
let request_stop c = c.request_stop ()
let log c fmt = Printf.ksprintf (fun s -> Log.info "service %s: %s" c.name s) fmt

module Config = struct
  let get ctx key default conv what =
    let fail () = Error (Printf.sprintf "service %s: config key %S must be %s" ctx.name key what) in
    let v = match ctx.config with `Assoc kv -> List.assoc_opt key kv | _ -> None in
    match (v, default) with
    | (None | Some `Null), Some d -> Ok d
    | (None | Some `Null), None ->
        Error (Printf.sprintf "service %s: config key %S is missing" ctx.name key)
    | Some v, _ -> ( match conv v with Some x -> Ok x | None -> fail ())

  let int ?default ctx key =
    get ctx key default (function `Int i -> Some i | `Intlit s -> int_of_string_opt s | _ -> None) "an integer"

  let float ?default ctx key =
    get ctx key default
      (function `Float f -> Some f | `Int i -> Some (float_of_int i) | _ -> None)
      "a number"

  let string ?default ctx key = get ctx key default (function `String s -> Some s | _ -> None) "a string"
  let bool ?default ctx key = get ctx key default (function `Bool b -> Some b | _ -> None) "a boolean"
end
