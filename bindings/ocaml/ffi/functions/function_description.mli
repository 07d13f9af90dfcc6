(** The C functions of [csrc/ring.h], described for ctypes.

    [stubgen/gen_stubs.exe] applies the functors to [Cstubs] to write the C
    stubs and the OCaml modules calling them; [src/ffi.ml] applies them to
    those generated modules.  Each C function is described once.  There are
    two functors because Cstubs fixes the runtime-lock policy per generated
    module:

    - {!Functions}: calls that never wait.  They keep the OCaml runtime lock,
      so they may read OCaml heap values in place ([ocaml_string]).  [myc_write]
      and [myc_read] appear here too, called with timeout 0, as the fast paths
      of a write and a read.
    - {!Blocking}: calls that may sleep on a futex.  Their stubs release the
      runtime lock for the duration of the call ([Cstubs.unlocked]), so every
      buffer passed to them lives outside the OCaml heap. *)

open Ctypes

module Types :
  module type of Mycelium_shm_type_description.Type_description.Types (Types_generated)
(** The types and constants, with the values read from C. *)

type writer
(** Phantom type of the opaque [myc_writer]. *)

type reader
(** Phantom type of the opaque [myc_reader]. *)

val writer : writer structure typ
(** [struct myc_writer], only ever used behind a pointer. *)

val reader : reader structure typ
(** [struct myc_reader], only ever used behind a pointer. *)

(** Calls that never wait (runtime lock kept). *)
module Functions (F : FOREIGN) : sig
  val last_error : (unit -> string F.return) F.result
  (** [myc_last_error]. *)

  val last_errno : (unit -> int F.return) F.result
  (** [myc_last_errno]. *)

  val result_name : (int -> string F.return) F.result
  (** [myc_result_name]. *)

  val name_check : (string -> int F.return) F.result
  (** [myc_name_check]. *)

  val unlink : (string -> int F.return) F.result
  (** [myc_unlink]. *)

  val writer_open :
    (string ->
    int ->
    Unsigned.uint64 ->
    Unsigned.uint32 ->
    Unsigned.uint32 ->
    Unsigned.uint8 ptr option ->
    Unsigned.uint32 ->
    Unsigned.uint32 ->
    writer structure ptr ptr ->
    int F.return)
    F.result
  (** [myc_writer_open_ex]: [myc_writer_open] plus [readers] and
      [untether_ms] (broadcast channels). *)

  val writer_close : (writer structure ptr -> unit F.return) F.result
  (** [myc_writer_close]. *)

  val write_nowait :
    (writer structure ptr ->
    Unsigned.uint32 ->
    string ocaml ->
    Unsigned.uint32 ->
    int64 ->
    int F.return)
    F.result
  (** [myc_write] reading the payload in place from an OCaml string; only
      ever called with timeout 0. *)

  val writer_set_spin : (writer structure ptr -> int64 -> unit F.return) F.result
  (** [myc_writer_set_spin]. *)

  val writer_stats :
    (writer structure ptr -> Types.stats structure ptr -> int F.return) F.result
  (** [myc_writer_stats]. *)

  val reader_open :
    (string ->
    int ->
    Unsigned.uint64 ->
    Unsigned.uint32 ->
    Unsigned.uint32 ->
    Unsigned.uint8 ptr option ->
    Unsigned.uint32 ->
    Unsigned.uint32 ->
    string option ->
    Unsigned.uint32 ->
    reader structure ptr ptr ->
    int F.return)
    F.result
  (** [myc_reader_open_ex]: [myc_reader_open] plus [readers],
      [untether_ms], the cursor name and the policy (broadcast channels). *)

  val reader_cursor :
    (reader structure ptr -> Types.cursor_info structure ptr -> int F.return) F.result
  (** [myc_reader_cursor]. *)

  val inspect_cursors :
    (string ->
    Types.cursor_info structure ptr ->
    Unsigned.uint32 ->
    Unsigned.uint32 ptr ->
    int F.return)
    F.result
  (** [myc_inspect_cursors]. *)

  val cursor_forget : (string -> string -> int F.return) F.result
  (** [myc_cursor_forget]. *)

  val cursor_register : (string -> string -> int F.return) F.result
  (** [myc_cursor_register]. *)

  val reader_check_held : (reader structure ptr -> int F.return) F.result
  (** [myc_reader_check_held]: after a peek, whether the held frame is
      intact. *)

  val reader_close : (reader structure ptr -> unit F.return) F.result
  (** [myc_reader_close]. *)

  val read_nowait :
    (reader structure ptr -> int64 -> Unsigned.uint8 ptr -> Unsigned.uint64 -> int64 F.return)
    F.result
  (** [myc_read], only ever called with timeout 0: the fast path of a read. *)

  val peek_nowait :
    (reader structure ptr -> int64 -> Types.frame structure ptr -> int F.return) F.result
  (** [myc_peek], only ever called with timeout 0: the fast path of a peek. *)

  val release : (reader structure ptr -> unit F.return) F.result
  (** [myc_release]. *)

  val reader_set_stuck_timeout :
    (reader structure ptr -> int64 -> unit F.return) F.result
  (** [myc_reader_set_stuck_timeout]. *)

  val reader_set_spin : (reader structure ptr -> int64 -> unit F.return) F.result
  (** [myc_reader_set_spin]. *)

  val reader_stats :
    (reader structure ptr -> Types.stats structure ptr -> int F.return) F.result
  (** [myc_reader_stats]. *)

  val inspect : (string -> Types.info structure ptr -> int F.return) F.result
  (** [myc_inspect]. *)

  val pid_alive : (int32 -> Unsigned.uint64 -> int F.return) F.result
  (** [myc_pid_alive]. *)

  val force_unblock :
    (string -> int32 ptr -> Unsigned.uint64 ptr -> int F.return) F.result
  (** [myc_force_unblock]; never waits. *)

  val last_batch_written : (unit -> Unsigned.uint32 F.return) F.result
  (** [myc_last_batch_written]: frames a failed [myc_write_batch] wrote
      before failing, on the calling thread. *)
end

(** Calls that may wait (runtime lock released; no OCaml heap pointers). *)
module Blocking (F : FOREIGN) : sig
  val write_wait :
    (writer structure ptr ->
    Unsigned.uint32 ->
    Unsigned.uint8 ptr ->
    Unsigned.uint32 ->
    int64 ->
    int F.return)
    F.result
  (** [myc_write] from C memory, with a timeout. *)

  val write_batch :
    (writer structure ptr ->
    Unsigned.uint32 ->
    Unsigned.uint16 ptr ->
    Unsigned.uint32 ptr ->
    unit ptr ->
    int64 ->
    int64 F.return)
    F.result
  (** [myc_write_batch]. *)

  val read :
    (reader structure ptr -> int64 -> Unsigned.uint8 ptr -> Unsigned.uint64 -> int64 F.return)
    F.result
  (** [myc_read]. *)

  val peek :
    (reader structure ptr -> int64 -> Types.frame structure ptr -> int F.return) F.result
  (** [myc_peek]; the frame struct lies outside the OCaml heap. *)

  val read_batch :
    (reader structure ptr ->
    Unsigned.uint32 ->
    int64 ->
    Unsigned.uint8 ptr ->
    Unsigned.uint64 ->
    Unsigned.uint16 ptr ->
    Unsigned.uint32 ptr ->
    int64 F.return)
    F.result
  (** [myc_read_batch]. *)
end
