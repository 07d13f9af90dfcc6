type code =
  | Full
  | Empty
  | Bad_argument
  | Invalid_name
  | Not_found
  | Exists
  | Bad_format
  | Corrupt
  | Reader_busy
  | Schema_mismatch
  | Too_large
  | Interrupted
  | System of int
  | Handle_busy
  | Closed
  | Abandoned
  | Too_many_writers
  | Foreign
  | Forked
  | Lapped
  | Too_many_readers
  | Unknown of int

type t = { code : code; message : string }

exception Mycelium_error of t

let code_name = function
  | Full -> "MYC_ERR_FULL"
  | Empty -> "MYC_ERR_EMPTY"
  | Bad_argument -> "MYC_ERR_ARG"
  | Invalid_name -> "MYC_ERR_NAME"
  | Not_found -> "MYC_ERR_NOT_FOUND"
  | Exists -> "MYC_ERR_EXISTS"
  | Bad_format -> "MYC_ERR_FORMAT"
  | Corrupt -> "MYC_ERR_CORRUPT"
  | Reader_busy -> "MYC_ERR_READER_BUSY"
  | Schema_mismatch -> "MYC_ERR_SCHEMA"
  | Too_large -> "MYC_ERR_TOO_LARGE"
  | Interrupted -> "MYC_ERR_INTERRUPTED"
  | System _ -> "MYC_ERR_SYSTEM"
  | Handle_busy -> "MYC_ERR_HANDLE_BUSY"
  | Closed -> "MYC_ERR_CLOSED"
  | Abandoned -> "MYC_ERR_ABANDONED"
  | Too_many_writers -> "MYC_ERR_TOO_MANY_WRITERS"
  | Foreign -> "MYC_ERR_FOREIGN"
  | Forked -> "MYC_ERR_FORKED"
  | Lapped -> "MYC_ERR_LAPPED"
  | Too_many_readers -> "MYC_ERR_TOO_MANY_READERS"
  | Unknown n -> Printf.sprintf "MYC_ERR_UNKNOWN(%d)" n

let kind_name = function
  | Full -> "Full"
  | Empty -> "Empty"
  | Bad_argument -> "InvalidArgument"
  | Invalid_name -> "InvalidName"
  | Not_found -> "ChannelNotFound"
  | Exists -> "ChannelExists"
  | Bad_format -> "FormatError"
  | Corrupt -> "CorruptChannel"
  | Reader_busy -> "ReaderBusy"
  | Schema_mismatch -> "SchemaMismatch"
  | Too_large -> "TooLarge"
  | Interrupted -> "Interrupted"
  | System _ -> "OSError"
  | Handle_busy -> "HandleBusy"
  | Closed -> "ChannelClosed"
  | Abandoned -> "FrameAbandoned"
  | Too_many_writers -> "TooManyWriters"
  | Foreign -> "ForeignChannel"
  | Forked -> "ForkedHandle"
  | Lapped -> "Lapped"
  | Too_many_readers -> "TooManyReaders"
  | Unknown _ -> "MyceliumError"

let to_string { code; message } =
  let name =
    match code with
    | System errno -> Printf.sprintf "%s (errno %d)" (code_name code) errno
    | _ -> code_name code
  in
  if message = "" then name else name ^ ": " ^ message

let pp ppf e = Format.pp_print_string ppf (to_string e)

let get_exn = function Ok v -> v | Error e -> raise (Mycelium_error e)

let () =
  Printexc.register_printer (function
    | Mycelium_error e -> Some ("Mycelium_error(" ^ to_string e ^ ")")
    | _ -> None)
