let check_name = Ffi.name_check
let unlink = Ffi.unlink
let unlink_if_exists name = ignore (Ffi.unlink name : (unit, Error.t) result)
let inspect = Ffi.inspect

type unblocked = { pid : int; position : int }

let force_unblock name =
  match Ffi.force_unblock name with
  | Ok (pid, position) -> Ok { pid; position }
  | Error _ as e -> e

let exists name =
  match Ffi.inspect name with
  | Ok _ -> true
  | Error _ -> false

let cursors = Ffi.inspect_cursors
let forget_cursor = Ffi.cursor_forget
let register_cursor = Ffi.cursor_register
let max_readers = Ffi.reader_slots
let cursor_name_max = Ffi.cursor_name_max
let digest_size = Ffi.digest_size
let min_capacity = Ffi.min_capacity
let max_type_id = Ffi.type_id_max
let name_max = Ffi.name_max
let pid_alive = Ffi.pid_alive
