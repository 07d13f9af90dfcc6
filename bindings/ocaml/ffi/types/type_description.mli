(** The types and constants of [csrc/ring.h], described for ctypes.

    Applied to [Cstubs_structs]' generator at build time, this functor
    becomes a C program that prints the real values, sizes and field offsets
    ([ffi/functions/types_generated.ml]); applied to that output it gives the
    values the binding uses.  No number is copied from the header by hand. *)

(** The description, for any [Ctypes.TYPE] implementation. *)
module Types (F : Ctypes.TYPE) : sig
  (** {1 Result codes ([enum myc_result])} *)

  val ok : int F.const
  (** [MYC_OK]. *)

  val err_full : int F.const
  (** [MYC_ERR_FULL]. *)

  val err_empty : int F.const
  (** [MYC_ERR_EMPTY]. *)

  val err_arg : int F.const
  (** [MYC_ERR_ARG]. *)

  val err_name : int F.const
  (** [MYC_ERR_NAME]. *)

  val err_not_found : int F.const
  (** [MYC_ERR_NOT_FOUND]. *)

  val err_exists : int F.const
  (** [MYC_ERR_EXISTS]. *)

  val err_format : int F.const
  (** [MYC_ERR_FORMAT]. *)

  val err_corrupt : int F.const
  (** [MYC_ERR_CORRUPT]. *)

  val err_reader_busy : int F.const
  (** [MYC_ERR_READER_BUSY]. *)

  val err_schema : int F.const
  (** [MYC_ERR_SCHEMA]. *)

  val err_too_large : int F.const
  (** [MYC_ERR_TOO_LARGE]. *)

  val err_interrupted : int F.const
  (** [MYC_ERR_INTERRUPTED]. *)

  val err_system : int F.const
  (** [MYC_ERR_SYSTEM]. *)

  val err_handle_busy : int F.const
  (** [MYC_ERR_HANDLE_BUSY]. *)

  val err_closed : int F.const
  (** [MYC_ERR_CLOSED]. *)

  val err_abandoned : int F.const
  (** [MYC_ERR_ABANDONED]. *)

  val err_too_many_writers : int F.const
  (** [MYC_ERR_TOO_MANY_WRITERS]. *)

  val err_foreign : int F.const
  (** [MYC_ERR_FOREIGN]. *)

  val err_forked : int F.const
  (** [MYC_ERR_FORKED]. *)

  val err_lapped : int F.const
  (** [MYC_ERR_LAPPED]. *)

  val err_too_many_readers : int F.const
  (** [MYC_ERR_TOO_MANY_READERS]. *)

  (** {1 Open flags} *)

  val attach : int F.const
  (** [MYC_ATTACH]. *)

  val create : int F.const
  (** [MYC_CREATE]. *)

  val create_or_attach : int F.const
  (** [MYC_CREATE_OR_ATTACH]. *)

  val start_oldest : int F.const
  (** [MYC_START_OLDEST]: reader open flag, a new broadcast cursor starts at
      the oldest frame writers still keep. *)

  (** {1 Broadcast channels} *)

  val reader_slots : int F.const
  (** [MYC_READER_SLOTS]: the most readers of a broadcast channel. *)

  val cursor_name_max : int F.const
  (** [MYC_CURSOR_NAME_MAX]: the longest cursor name in bytes. *)

  val policy_tethered : int F.const
  (** [MYC_POLICY_TETHERED]. *)

  val policy_lossy : int F.const
  (** [MYC_POLICY_LOSSY]. *)

  (** {1 Format limits} *)

  val digest_size : int F.const
  (** [MYC_DIGEST_SIZE]. *)

  val min_capacity : int64 F.const
  (** [MYC_MIN_CAPACITY]. *)

  val max_capacity : int64 F.const
  (** [MYC_MAX_CAPACITY]. *)

  val name_max : int F.const
  (** [MYC_NAME_MAX]. *)

  val type_padding : int F.const
  (** [MYC_TYPE_PADDING]. *)

  val type_id_max : int F.const
  (** [MYC_TYPE_ID_MAX]. *)

  val writer_slots : int F.const
  (** [MYC_WRITER_SLOTS]. *)

  val frame_header_size : int F.const
  (** [MYC_FRAME_HEADER_SIZE] (16 in format version 2). *)

  val frame_alignment : int F.const
  (** [MYC_FRAME_ALIGNMENT] (16 in format version 2). *)

  val format_version : int F.const
  (** [MYC_FORMAT_VERSION]. *)

  val no_hold : Unsigned.uint64 F.const
  (** [MYC_NO_HOLD]: the [hold_position] of a channel holding no
      force-unblocked claim. *)

  (** {1 [struct myc_stats]} *)

  type stats
  (** The phantom type of [struct myc_stats]. *)

  val stats : stats Ctypes.structure F.typ
  (** [struct myc_stats]; its fields follow, named as in C with [st_]. *)

  val st_capacity : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_max_payload : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_head : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_tail : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_frames_written : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_bytes_written : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_full_events : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_write_timeouts : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_writer_wakes : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_frames_read : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_bytes_read : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_padding_frames : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_unblocks : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_reader_wakes : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_reader_sleeps : (Unsigned.uint64, stats Ctypes.structure) F.field
  val st_takeovers : (Unsigned.uint64, stats Ctypes.structure) F.field

  (** {1 [struct myc_frame]} *)

  type frame
  (** The phantom type of [struct myc_frame]. *)

  val frame : frame Ctypes.structure F.typ
  (** [struct myc_frame], the view filled by [myc_peek]; its fields follow,
      named as in C with [fr_]. *)

  val fr_payload : (Unsigned.uint8 Ctypes.ptr, frame Ctypes.structure) F.field
  val fr_payload_len : (Unsigned.uint32, frame Ctypes.structure) F.field
  val fr_type_id : (Unsigned.uint16, frame Ctypes.structure) F.field
  val fr_flags : (Unsigned.uint16, frame Ctypes.structure) F.field

  (** {1 [struct myc_info]} *)

  type info
  (** The phantom type of [struct myc_info]. *)

  val info : info Ctypes.structure F.typ
  (** [struct myc_info]; its fields follow, named as in C with [in_].  The
      arrays have 32 elements ([MYC_DIGEST_SIZE], [MYC_WRITER_SLOTS]; the
      binding checks both at start-up). *)

  val in_stats : (stats Ctypes.structure, info Ctypes.structure) F.field
  val in_schema_digest : (Unsigned.uint8 Ctypes.CArray.t, info Ctypes.structure) F.field
  val in_created_ns : (Unsigned.uint64, info Ctypes.structure) F.field
  val in_file_size : (Unsigned.uint64, info Ctypes.structure) F.field
  val in_creator_pid : (int32, info Ctypes.structure) F.field
  val in_creator_alive : (int32, info Ctypes.structure) F.field
  val in_reader_pid : (int32, info Ctypes.structure) F.field
  val in_reader_alive : (int32, info Ctypes.structure) F.field
  val in_format_version : (Unsigned.uint32, info Ctypes.structure) F.field
  val in_writer_count : (Unsigned.uint32, info Ctypes.structure) F.field
  val in_writer_pids : (int32 Ctypes.CArray.t, info Ctypes.structure) F.field
  val in_writer_alive : (int32 Ctypes.CArray.t, info Ctypes.structure) F.field
  val in_stalled_pid : (int32, info Ctypes.structure) F.field
  val in_reader_slots : (Unsigned.uint32, info Ctypes.structure) F.field
  val in_stalled_since_ns : (Unsigned.uint64, info Ctypes.structure) F.field
  val in_hold_position : (Unsigned.uint64, info Ctypes.structure) F.field

  (** {1 [struct myc_cursor_info]} *)

  type cursor_info
  (** The phantom type of [struct myc_cursor_info]. *)

  val cursor_info : cursor_info Ctypes.structure F.typ
  (** [struct myc_cursor_info]; its fields follow, named as in C with [cu_].
      The name array has 40 elements ([MYC_CURSOR_NAME_MAX + 1]; the binding
      checks it at start-up). *)

  val cu_name : (char Ctypes.CArray.t, cursor_info Ctypes.structure) F.field
  val cu_slot : (Unsigned.uint32, cursor_info Ctypes.structure) F.field
  val cu_policy : (Unsigned.uint32, cursor_info Ctypes.structure) F.field
  val cu_durable : (Unsigned.uint32, cursor_info Ctypes.structure) F.field
  val cu_tethered : (Unsigned.uint32, cursor_info Ctypes.structure) F.field
  val cu_pid : (int32, cursor_info Ctypes.structure) F.field
  val cu_alive : (int32, cursor_info Ctypes.structure) F.field
  val cu_position : (Unsigned.uint64, cursor_info Ctypes.structure) F.field
  val cu_lag : (Unsigned.uint64, cursor_info Ctypes.structure) F.field
  val cu_frames_read : (Unsigned.uint64, cursor_info Ctypes.structure) F.field
  val cu_bytes_read : (Unsigned.uint64, cursor_info Ctypes.structure) F.field
  val cu_lost : (Unsigned.uint64, cursor_info Ctypes.structure) F.field
  val cu_laps : (Unsigned.uint64, cursor_info Ctypes.structure) F.field
  val cu_untethers : (Unsigned.uint64, cursor_info Ctypes.structure) F.field
  val cu_attached_ns : (Unsigned.uint64, cursor_info Ctypes.structure) F.field
end
