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
  stalled_pid : int option;
  stalled_since_ns : int option;
  hold_position : int option;
  reader_slots : int;
}

let has_schema i = String.exists (fun c -> c <> '\000') i.schema_digest
