(** Counters of a channel ([struct myc_stats] in [csrc/ring.h]).

    A snapshot read from the channel's shared header; positions are byte
    counts since the channel was created.  The counters are u64 in shared
    memory and are returned as OCaml [int]s (63 bits). *)

type t = {
  capacity : int;  (** Ring bytes (a power of two). *)
  max_payload : int;  (** Largest payload a frame may carry. *)
  head : int;  (** Bytes ever consumed by the reader. *)
  tail : int;  (** Bytes ever claimed by writers. *)
  frames_written : int;  (** Frames committed by all writers. *)
  bytes_written : int;  (** Payload bytes committed by all writers. *)
  full_events : int;  (** Writes that found the ring full. *)
  write_timeouts : int;  (** Blocking writes that gave up. *)
  writer_wakes : int;  (** Futex wakes issued by writers. *)
  frames_read : int;  (** Frames consumed by the reader. *)
  bytes_read : int;  (** Payload bytes consumed by the reader. *)
  padding_frames : int;  (** Padding and revoked frames skipped by the reader. *)
  unblocks : int;  (** Claims of dead writers the reader skipped. *)
  reader_wakes : int;  (** Futex wakes issued by the reader. *)
  reader_sleeps : int;  (** Times the reader slept on its futex. *)
  takeovers : int;  (** Readers that replaced a dead reader. *)
}

val pp : Format.formatter -> t -> unit
(** [pp ppf s] prints [s] as [field=value] pairs. *)
