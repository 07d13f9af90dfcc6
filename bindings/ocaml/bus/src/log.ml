type level = Debug | Info | Warning | Error

let prefix = ref ""
let lock = Mutex.create ()

let level =
  ref
    (match Sys.getenv_opt "MYCELIUM_BUS_LOG" with
    | Some ("debug" | "DEBUG") -> Debug
    | _ -> Info)

let rank = function Debug -> 0 | Info -> 1 | Warning -> 2 | Error -> 3
let name = function Debug -> "debug" | Info -> "info" | Warning -> "warning" | Error -> "error"
let set_prefix p = prefix := if p = "" then "" else "[" ^ p ^ "] "
let set_level l = level := l

let write l s =
  let s = String.map (function '\n' | '\r' -> ' ' | c -> c) s in
  let line = Printf.sprintf "%s%s: %s\n" !prefix (name l) s in
  Mutex.lock lock;
  (try
     prerr_string line;
     flush stderr
   with _ -> ());
  Mutex.unlock lock

let msg l fmt =
  if rank l >= rank !level then Printf.ksprintf (write l) fmt
  else Printf.ikfprintf (fun () -> ()) () fmt

let debug fmt = msg Debug fmt
let info fmt = msg Info fmt
let warn fmt = msg Warning fmt
let err fmt = msg Error fmt
