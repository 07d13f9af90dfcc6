type writer = { pid : int; alive : bool }

type t = {
  stats : Stats.t;
  schema_digest : string;
  created_ns : int;
  file_size : int;
  creator_pid : int;
  creator_alive : bool;
  reader_pid : int option;
  reader_alive : bool;
  format_version : int;
  writers : writer list;
}

let has_schema i = String.exists (fun c -> c <> '\000') i.schema_digest
