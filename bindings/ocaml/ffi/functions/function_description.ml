(* The C functions of csrc/ring.h, as ctypes functors.

   Each C function is described once.  Two functors, because Cstubs fixes the
   runtime-lock policy per generated module:

   - [Functions]: calls that never wait.  They keep the OCaml runtime lock and
     may read OCaml heap values in place ([ocaml_string]), so [try_write]
     copies the payload straight from an OCaml string into the ring.  The
     fast paths of a write and a read ([myc_write] and [myc_read] with timeout
     0) are described here too, so a frame that goes in or out at once costs
     no release of the runtime lock.
   - [Blocking]: calls that may sleep on a futex.  Their stubs release the
     runtime lock for the duration of the call (Cstubs.unlocked), so other
     OCaml threads run meanwhile; every buffer they receive therefore lives
     outside the OCaml heap (a Bigarray). *)

open Ctypes

module Types = Mycelium_shm_type_description.Type_description.Types (Types_generated)

(* Opaque handles (typedef struct myc_writer myc_writer; ...). *)
type writer
type reader

let writer : writer structure typ = structure "myc_writer"
let reader : reader structure typ = structure "myc_reader"

module Functions (F : Ctypes.FOREIGN) = struct
  open F

  let last_error = foreign "myc_last_error" (void @-> returning string)
  let last_errno = foreign "myc_last_errno" (void @-> returning int)
  let result_name = foreign "myc_result_name" (int @-> returning string)
  let name_check = foreign "myc_name_check" (string @-> returning int)
  let unlink = foreign "myc_unlink" (string @-> returning int)

  (* myc_writer_open_ex: myc_writer_open plus the broadcast arguments
     (readers, untether_ms); 0, 0 is a plain myc_writer_open. *)
  let writer_open =
    foreign "myc_writer_open_ex"
      (string @-> int @-> uint64_t @-> uint32_t @-> uint32_t
     @-> ptr_opt uint8_t @-> uint32_t @-> uint32_t @-> ptr (ptr writer)
     @-> returning int)

  let writer_close = foreign "myc_writer_close" (ptr writer @-> returning void)

  (* myc_write without waiting (timeout_ns = 0): the payload is read in place
     from the OCaml string, so the runtime lock must stay held. *)
  let write_nowait =
    foreign "myc_write"
      (ptr writer @-> uint32_t @-> ocaml_string @-> uint32_t @-> int64_t
     @-> returning int)

  let writer_set_spin =
    foreign "myc_writer_set_spin" (ptr writer @-> int64_t @-> returning void)

  let writer_stats =
    foreign "myc_writer_stats"
      (ptr writer @-> ptr Types.stats @-> returning int)

  (* myc_reader_open_ex: myc_reader_open plus readers, untether_ms, the
     cursor name (NULL: anonymous) and the policy (0: tethered). *)
  let reader_open =
    foreign "myc_reader_open_ex"
      (string @-> int @-> uint64_t @-> uint32_t @-> uint32_t
     @-> ptr_opt uint8_t @-> uint32_t @-> uint32_t @-> string_opt @-> uint32_t
     @-> ptr (ptr reader) @-> returning int)

  (* Broadcast cursors: snapshots of the cursor table, never waiting. *)
  let reader_cursor =
    foreign "myc_reader_cursor"
      (ptr reader @-> ptr Types.cursor_info @-> returning int)

  let inspect_cursors =
    foreign "myc_inspect_cursors"
      (string @-> ptr Types.cursor_info @-> uint32_t @-> ptr uint32_t
     @-> returning int)

  let cursor_forget =
    foreign "myc_cursor_forget" (string @-> string @-> returning int)

  let cursor_register =
    foreign "myc_cursor_register" (string @-> string @-> returning int)

  (* After a peek: was the held frame overwritten (lossy readers)? *)
  let reader_check_held =
    foreign "myc_reader_check_held" (ptr reader @-> returning int)

  let reader_close = foreign "myc_reader_close" (ptr reader @-> returning void)

  (* myc_read without waiting (timeout_ns = 0): the fast path of a read, so
     that a frame already there costs no runtime-lock release. *)
  let read_nowait =
    foreign "myc_read"
      (ptr reader @-> int64_t @-> ptr uint8_t @-> uint64_t @-> returning int64_t)

  (* myc_peek without waiting, and myc_release: a frame already there is
     viewed in place without a runtime-lock release. *)
  let peek_nowait =
    foreign "myc_peek" (ptr reader @-> int64_t @-> ptr Types.frame @-> returning int)

  let release = foreign "myc_release" (ptr reader @-> returning void)

  let reader_set_stuck_timeout =
    foreign "myc_reader_set_stuck_timeout"
      (ptr reader @-> int64_t @-> returning void)

  let reader_set_spin =
    foreign "myc_reader_set_spin" (ptr reader @-> int64_t @-> returning void)

  let reader_stats =
    foreign "myc_reader_stats"
      (ptr reader @-> ptr Types.stats @-> returning int)

  let inspect =
    foreign "myc_inspect" (string @-> ptr Types.info @-> returning int)

  let pid_alive = foreign "myc_pid_alive" (int32_t @-> uint64_t @-> returning int)

  (* myc_force_unblock: revokes a claim and wakes the reader, never waits.
     The pid and position go to C memory the caller allocates. *)
  let force_unblock =
    foreign "myc_force_unblock"
      (string @-> ptr int32_t @-> ptr uint64_t @-> returning int)

  (* myc_last_batch_written: a thread-local of the C core, read right after
     a failed myc_write_batch on the same thread. *)
  let last_batch_written =
    foreign "myc_last_batch_written" (void @-> returning uint32_t)
end

module Blocking (F : Ctypes.FOREIGN) = struct
  open F

  (* myc_write that may wait for room: payload outside the OCaml heap. *)
  let write_wait =
    foreign "myc_write"
      (ptr writer @-> uint32_t @-> ptr uint8_t @-> uint32_t @-> int64_t
     @-> returning int)

  (* myc_write_batch: several frames with one claim; payloads packed. *)
  let write_batch =
    foreign "myc_write_batch"
      (ptr writer @-> uint32_t @-> ptr uint16_t @-> ptr uint32_t @-> ptr void
     @-> int64_t @-> returning int64_t)

  (* myc_read into a buffer outside the OCaml heap; may wait for a frame. *)
  let read =
    foreign "myc_read"
      (ptr reader @-> int64_t @-> ptr uint8_t @-> uint64_t @-> returning int64_t)

  (* myc_peek that may wait for a frame; [frame] is outside the OCaml heap. *)
  let peek =
    foreign "myc_peek" (ptr reader @-> int64_t @-> ptr Types.frame @-> returning int)

  (* myc_read_batch: several frames per call, payloads packed in [buf]. *)
  let read_batch =
    foreign "myc_read_batch"
      (ptr reader @-> uint32_t @-> int64_t @-> ptr uint8_t @-> uint64_t
     @-> ptr uint16_t @-> ptr uint32_t @-> returning int64_t)
end
