(** A snapshot of a channel taken without attaching to it
    ([struct myc_info], filled by [myc_inspect]). *)

type writer = {
  pid : int;  (** Process id registered in the writer slot. *)
  alive : bool;  (** Whether that process is still running. *)
}
(** One used slot of the channel's writer registry. *)

type t = {
  stats : Stats.t;  (** The channel's counters. *)
  schema_digest : string;
      (** The 32-byte SHA-256 schema digest; all zero bytes for none. *)
  created_ns : int;  (** [CLOCK_REALTIME] at creation, in nanoseconds. *)
  file_size : int;  (** Size of the shared-memory object in bytes. *)
  creator_pid : int;  (** Process that created the channel. *)
  creator_alive : bool;  (** Whether the creator is still running. *)
  reader_pid : int option;  (** The attached reader's pid, if any. *)
  reader_alive : bool;  (** Whether the attached reader is still running. *)
  format_version : int;  (** Format version in the header. *)
  writers : writer list;
      (** The processes holding writer slots, in slot order, one entry per
          process however many slots (threads) it holds. *)
  stalled_pid : int option;
      (** The live writer whose unfinished claim the reader is waiting on
          (back-pressure); [None] if the reader is not held.  Such a stall
          can be ended by {!Channel.force_unblock}. *)
  stalled_since_ns : int option;
      (** [CLOCK_REALTIME] in nanoseconds when that stall began. *)
  hold_position : int option;
      (** Ring position of a force-unblocked claim whose writer has not yet
          returned from it: writers do not reuse space from there until it
          does (or dies).  [None] when no such claim is held. *)
  reader_slots : int;
      (** Cursor slots: 0 for a single-reader channel, else the most readers
          of this broadcast channel (see {!Channel.cursors}). *)
}
(** What [myc_inspect] reports. *)

val has_schema : t -> bool
(** [has_schema i] is [false] when the channel's digest is all zero. *)
