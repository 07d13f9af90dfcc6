type policy = Tethered | Lossy
type start = Tail | Oldest

type info = {
  name : string;
  slot : int;
  policy : policy;
  durable : bool;
  tethered : bool;
  pid : int option;
  alive : bool;
  position : int;
  lag : int;
  frames_read : int;
  bytes_read : int;
  lost : int;
  laps : int;
  untethers : int;
  attached_ns : int;
}

let policy_name = function Tethered -> "tethered" | Lossy -> "lossy"

let policy_of_string = function
  | "tethered" -> Ok Tethered
  | "lossy" -> Ok Lossy
  | s ->
      Error
        {
          Error.code = Error.Bad_argument;
          message = Printf.sprintf "unknown reader policy %S: use \"tethered\" or \"lossy\"" s;
        }
