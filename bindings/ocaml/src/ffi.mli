(** The C boundary: every call into the C core ([csrc/*.c], contract in
    [csrc/ring.h]) goes through this module.

    It turns OCaml values into the C arguments (checking the ranges C types
    cannot hold), calls the stubs generated from
    [ffi/functions/function_description.ml], and converts each negative
    [myc_result] into an {!Error.t} right after the call, reading
    [myc_last_error] on the same thread.  Internal to the library. *)

type writer
(** A live [myc_writer *]. *)

type reader
(** A live [myc_reader *]. *)

(** Which of the open flags ([MYC_ATTACH], [MYC_CREATE],
    [MYC_CREATE_OR_ATTACH]) to pass. *)
type how = Attach | Create | Create_or_attach

val digest_size : int
(** [MYC_DIGEST_SIZE]. *)

val type_id_max : int
(** [MYC_TYPE_ID_MAX]. *)

val min_capacity : int
(** [MYC_MIN_CAPACITY]. *)

val name_max : int
(** [MYC_NAME_MAX]. *)

val reader_slots : int
(** [MYC_READER_SLOTS]: the most readers of a broadcast channel. *)

val cursor_name_max : int
(** [MYC_CURSOR_NAME_MAX]: the longest cursor name in bytes. *)

val error : Error.code -> string -> ('a, Error.t) result
(** [error code msg] is an error raised on the OCaml side of the boundary. *)

val u32_max : int
(** [u32_max] is the largest value a C [uint32_t] argument takes. *)

val name_check : string -> (unit, Error.t) result
(** [name_check name] is [myc_name_check]. *)

val unlink : string -> (unit, Error.t) result
(** [unlink name] is [myc_unlink]. *)

val inspect : string -> (Info.t, Error.t) result
(** [inspect name] is [myc_inspect]. *)

val force_unblock : string -> (int * int, Error.t) result
(** [force_unblock name] is [myc_force_unblock]: [Ok (pid, position)] of the
    revoked claim. *)

val pid_alive : int -> bool
(** [pid_alive pid] is [myc_pid_alive pid 0]. *)

val writer_open :
  how:how ->
  capacity:int ->
  max_payload:int ->
  mode:int ->
  digest:string option ->
  readers:int ->
  untether_ns:int option ->
  string ->
  (writer, Error.t) result
(** [writer_open ~how ~capacity ~max_payload ~mode ~digest ~readers
    ~untether_ns name] is [myc_writer_open_ex]; [untether_ns] is rounded down
    to whole milliseconds (at least 1 ms; [None]: the default). *)

val writer_close : writer -> unit
(** [writer_close w] is [myc_writer_close]; [w] must not be used again. *)

val write_nowait :
  writer -> type_id:int -> string -> off:int -> len:int -> (unit, Error.t) result
(** [write_nowait w ~type_id s ~off ~len] is [myc_write] with timeout 0,
    copying [len] bytes of [s] from [off] straight out of the OCaml heap.
    Keeps the runtime lock.  [off] and [len] must be in range. *)

val write_wait :
  writer ->
  type_id:int ->
  string ->
  off:int ->
  len:int ->
  timeout_ns:int ->
  (unit, Error.t) result
(** [write_wait w ~type_id s ~off ~len ~timeout_ns] is [myc_write] with a
    timeout; the payload is first copied out of the OCaml heap and the
    runtime lock is released while the call waits for room. *)

val write_batch :
  writer -> (int * string) array -> timeout_ns:int -> (int, Error.t) result
(** [write_batch w frames ~timeout_ns] is [myc_write_batch] for the
    [(type_id, payload)] pairs, copied out of the OCaml heap first; releases
    the runtime lock while it waits.  [Ok n]: the first [n] were written.
    An error met after some frames were written ([myc_last_batch_written])
    says how many in its message. *)

val writer_set_spin : writer -> int -> unit
(** [writer_set_spin w ns] is [myc_writer_set_spin]. *)

val writer_stats : writer -> (Stats.t, Error.t) result
(** [writer_stats w] is [myc_writer_stats]. *)

val reader_open :
  how:how ->
  capacity:int ->
  max_payload:int ->
  mode:int ->
  digest:string option ->
  readers:int ->
  untether_ns:int option ->
  cursor:string option ->
  policy:Cursor.policy ->
  start:Cursor.start ->
  string ->
  (reader, Error.t) result
(** [reader_open ...] is [myc_reader_open_ex]: the arguments of
    {!writer_open}, plus the cursor name ([None]: anonymous), policy and
    start of a broadcast reader. *)

val reader_cursor : reader -> (Cursor.info, Error.t) result
(** [reader_cursor r] is [myc_reader_cursor]. *)

val inspect_cursors : string -> (Cursor.info list, Error.t) result
(** [inspect_cursors name] is [myc_inspect_cursors], in slot order. *)

val cursor_forget : string -> string -> (unit, Error.t) result
(** [cursor_forget name cursor] is [myc_cursor_forget]. *)

val cursor_register : string -> string -> (unit, Error.t) result
(** [cursor_register name cursor] is [myc_cursor_register]. *)

val check_held : reader -> (unit, Error.t) result
(** [check_held r] is [myc_reader_check_held]: after {!peek} and before
    {!release}, [Error] with [Lapped] if the held frame was overwritten. *)

val reader_close : reader -> unit
(** [reader_close r] is [myc_reader_close]; [r] must not be used again. *)

val reader_set_spin : reader -> int -> unit
(** [reader_set_spin r ns] is [myc_reader_set_spin]. *)

val reader_set_stuck_timeout : reader -> int -> unit
(** [reader_set_stuck_timeout r ns] is [myc_reader_set_stuck_timeout]. *)

val reader_stats : reader -> (Stats.t, Error.t) result
(** [reader_stats r] is [myc_reader_stats]. *)

type buffer
(** A byte buffer outside the OCaml heap, for calls that release the
    runtime lock. *)

val buffer : int -> buffer
(** [buffer n] allocates [n] bytes (freed by the GC). *)

val buffer_length : buffer -> int
(** [buffer_length b] is the size [b] was allocated with. *)

val buffer_sub : buffer -> off:int -> len:int -> string
(** [buffer_sub b ~off ~len] copies [len] bytes of [b] from [off]. *)

val read : reader -> timeout_ns:int -> buffer -> (int * int, Error.t) result
(** [read r ~timeout_ns b] is [myc_read] into [b]: first without waiting
    (runtime lock kept), then, if nothing was there and [timeout_ns] is not
    0, with the timeout and the runtime lock released while it waits;
    [Ok (type_id, payload_len)]. *)

type bigstring = (char, Bigarray.int8_unsigned_elt, Bigarray.c_layout) Bigarray.Array1.t
(** A caller-owned byte buffer outside the OCaml heap. *)

val read_bigstring :
  reader -> timeout_ns:int -> bigstring -> off:int -> len:int -> (int * int, Error.t) result
(** [read_bigstring r ~timeout_ns ba ~off ~len] is {!read} into the [len]
    bytes of [ba] from [off] (which must be in range): one copy, ring to
    [ba]; a frame longer than [len] is left unread ([Bad_argument]). *)

val write_bigstring :
  writer ->
  type_id:int ->
  bigstring ->
  off:int ->
  len:int ->
  timeout_ns:int ->
  (unit, Error.t) result
(** [write_bigstring w ~type_id ba ~off ~len ~timeout_ns] is [myc_write] of
    [len] bytes of [ba] from [off] (which must be in range), read in place;
    the runtime lock is released for the call. *)

type peek_frame
(** A [struct myc_frame] outside the OCaml heap, filled by {!peek}. *)

val peek_frame : unit -> peek_frame
(** [peek_frame ()] allocates one. *)

val peek :
  reader -> timeout_ns:int -> peek_frame -> (int * bigstring, Error.t) result
(** [peek r ~timeout_ns fr] is [myc_peek] (first without waiting, then, if
    [timeout_ns] is not 0, with the runtime lock released while it waits):
    [Ok (type_id, view)], [view] a Bigarray over the payload in the ring,
    valid only until {!release} or the next call on [r]. *)

val release : reader -> unit
(** [release r] is [myc_release]: consumes the frame last peeked. *)

type batch
(** The type-id and length arrays of {!read_batch} (outside the heap). *)

val batch : int -> batch
(** [batch n] has room for [n] frames. *)

val batch_length : batch -> int
(** [batch_length t] is the number of frames [t] has room for. *)

val read_batch :
  reader ->
  timeout_ns:int ->
  max_frames:int ->
  buffer ->
  batch ->
  ((int * int) array, Error.t) result
(** [read_batch r ~timeout_ns ~max_frames b t] is [myc_read_batch] for at
    most [max_frames] frames (and the room in [t]), filling [b] and [t],
    releasing the runtime lock while it waits; [Ok frames] gives
    [(type_id, payload_len)] of each frame, payloads packed in [b]. *)
