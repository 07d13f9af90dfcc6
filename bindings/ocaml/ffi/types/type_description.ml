(* The types and constants of csrc/ring.h, as a ctypes functor.

   Every number here comes from the C header at build time: the functor is
   applied once to Cstubs_structs' generator, which writes a C program that
   prints the values and layouts, and once to the module it printed
   (Types_generated). Nothing is copied by hand. *)

open Ctypes

module Types (F : Ctypes.TYPE) = struct
  open F

  (* Result codes (enum myc_result). *)
  let ok = constant "MYC_OK" int
  let err_full = constant "MYC_ERR_FULL" int
  let err_empty = constant "MYC_ERR_EMPTY" int
  let err_arg = constant "MYC_ERR_ARG" int
  let err_name = constant "MYC_ERR_NAME" int
  let err_not_found = constant "MYC_ERR_NOT_FOUND" int
  let err_exists = constant "MYC_ERR_EXISTS" int
  let err_format = constant "MYC_ERR_FORMAT" int
  let err_corrupt = constant "MYC_ERR_CORRUPT" int
  let err_reader_busy = constant "MYC_ERR_READER_BUSY" int
  let err_schema = constant "MYC_ERR_SCHEMA" int
  let err_too_large = constant "MYC_ERR_TOO_LARGE" int
  let err_interrupted = constant "MYC_ERR_INTERRUPTED" int
  let err_system = constant "MYC_ERR_SYSTEM" int
  let err_handle_busy = constant "MYC_ERR_HANDLE_BUSY" int
  let err_closed = constant "MYC_ERR_CLOSED" int
  let err_abandoned = constant "MYC_ERR_ABANDONED" int
  let err_too_many_writers = constant "MYC_ERR_TOO_MANY_WRITERS" int
  let err_foreign = constant "MYC_ERR_FOREIGN" int
  let err_forked = constant "MYC_ERR_FORKED" int
  let err_lapped = constant "MYC_ERR_LAPPED" int
  let err_too_many_readers = constant "MYC_ERR_TOO_MANY_READERS" int

  (* Flags of the open functions. *)
  let attach = constant "MYC_ATTACH" int
  let create = constant "MYC_CREATE" int
  let create_or_attach = constant "MYC_CREATE_OR_ATTACH" int
  let start_oldest = constant "MYC_START_OLDEST" int

  (* Broadcast channels. *)
  let reader_slots = constant "MYC_READER_SLOTS" int
  let cursor_name_max = constant "MYC_CURSOR_NAME_MAX" int
  let policy_tethered = constant "MYC_POLICY_TETHERED" int
  let policy_lossy = constant "MYC_POLICY_LOSSY" int

  (* Format limits. *)
  let digest_size = constant "MYC_DIGEST_SIZE" int
  let min_capacity = constant "MYC_MIN_CAPACITY" int64_t
  let max_capacity = constant "MYC_MAX_CAPACITY" int64_t
  let name_max = constant "MYC_NAME_MAX" int
  let type_padding = constant "MYC_TYPE_PADDING" int
  let type_id_max = constant "MYC_TYPE_ID_MAX" int
  let writer_slots = constant "MYC_WRITER_SLOTS" int
  let frame_header_size = constant "MYC_FRAME_HEADER_SIZE" int
  let frame_alignment = constant "MYC_FRAME_ALIGNMENT" int
  let format_version = constant "MYC_FORMAT_VERSION" int
  let no_hold = constant "MYC_NO_HOLD" uint64_t

  (* struct myc_stats: sixteen u64 counters. *)
  type stats
  let stats : stats structure typ = structure "myc_stats"
  let ( -: ) name ty = field stats name ty
  let st_capacity = "capacity" -: uint64_t
  let st_max_payload = "max_payload" -: uint64_t
  let st_head = "head" -: uint64_t
  let st_tail = "tail" -: uint64_t
  let st_frames_written = "frames_written" -: uint64_t
  let st_bytes_written = "bytes_written" -: uint64_t
  let st_full_events = "full_events" -: uint64_t
  let st_write_timeouts = "write_timeouts" -: uint64_t
  let st_writer_wakes = "writer_wakes" -: uint64_t
  let st_frames_read = "frames_read" -: uint64_t
  let st_bytes_read = "bytes_read" -: uint64_t
  let st_padding_frames = "padding_frames" -: uint64_t
  let st_unblocks = "unblocks" -: uint64_t
  let st_reader_wakes = "reader_wakes" -: uint64_t
  let st_reader_sleeps = "reader_sleeps" -: uint64_t
  let st_takeovers = "takeovers" -: uint64_t
  let () = seal stats

  (* struct myc_frame: a zero-copy view of the next frame (myc_peek). *)
  type frame
  let frame : frame structure typ = structure "myc_frame"
  let ( -: ) name ty = field frame name ty
  let fr_payload = "payload" -: ptr uint8_t
  let fr_payload_len = "payload_len" -: uint32_t
  let fr_type_id = "type_id" -: uint16_t
  let fr_flags = "flags" -: uint16_t
  let () = seal frame

  (* struct myc_info: a snapshot taken by myc_inspect. *)
  type info
  let info : info structure typ = structure "myc_info"
  let ( -: ) name ty = field info name ty
  let in_stats = "stats" -: stats
  let in_schema_digest = "schema_digest" -: array 32 uint8_t
  let in_created_ns = "created_ns" -: uint64_t
  let in_file_size = "file_size" -: uint64_t
  let in_creator_pid = "creator_pid" -: int32_t
  let in_creator_alive = "creator_alive" -: int32_t
  let in_reader_pid = "reader_pid" -: int32_t
  let in_reader_alive = "reader_alive" -: int32_t
  let in_format_version = "format_version" -: uint32_t
  let in_writer_count = "writer_count" -: uint32_t
  let in_writer_pids = "writer_pids" -: array 32 int32_t
  let in_writer_alive = "writer_alive" -: array 32 int32_t
  let in_stalled_pid = "stalled_pid" -: int32_t
  let in_reader_slots = "reader_slots" -: uint32_t
  let in_stalled_since_ns = "stalled_since_ns" -: uint64_t
  let in_hold_position = "hold_position" -: uint64_t
  let () = seal info

  (* struct myc_cursor_info: one reader's cursor of a broadcast channel.
     The name array is MYC_CURSOR_NAME_MAX + 1 (40) bytes; Ffi checks the
     constant at start-up. *)
  type cursor_info
  let cursor_info : cursor_info structure typ = structure "myc_cursor_info"
  let ( -: ) name ty = field cursor_info name ty
  let cu_name = "name" -: array 40 char
  let cu_slot = "slot" -: uint32_t
  let cu_policy = "policy" -: uint32_t
  let cu_durable = "durable" -: uint32_t
  let cu_tethered = "tethered" -: uint32_t
  let cu_pid = "pid" -: int32_t
  let cu_alive = "alive" -: int32_t
  let cu_position = "position" -: uint64_t
  let cu_lag = "lag" -: uint64_t
  let cu_frames_read = "frames_read" -: uint64_t
  let cu_bytes_read = "bytes_read" -: uint64_t
  let cu_lost = "lost" -: uint64_t
  let cu_laps = "laps" -: uint64_t
  let cu_untethers = "untethers" -: uint64_t
  let cu_attached_ns = "attached_ns" -: uint64_t
  let () = seal cursor_info
end
