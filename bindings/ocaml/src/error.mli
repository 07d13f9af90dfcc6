(** Errors of the channel API.

    Every failing call of {!Writer}, {!Reader} and {!Channel} returns
    [Error e] with [e.code] mirroring the C result code ([myc_result] in
    [csrc/ring.h]) and [e.message] the C library's detail text
    ([myc_last_error]) taken right after the failing call. *)

(** One constructor per negative [myc_result]. *)
type code =
  | Full  (** [MYC_ERR_FULL]: no room in the ring before the timeout. *)
  | Empty
      (** [MYC_ERR_EMPTY]: no frame before the timeout; from
          {!Channel.force_unblock}: no claim holds the reader. *)
  | Bad_argument  (** [MYC_ERR_ARG]: a bad argument (see the message). *)
  | Invalid_name  (** [MYC_ERR_NAME]: not a valid channel name. *)
  | Not_found  (** [MYC_ERR_NOT_FOUND]: no channel of that name. *)
  | Exists  (** [MYC_ERR_EXISTS]: the channel already exists. *)
  | Bad_format  (** [MYC_ERR_FORMAT]: not a channel of this format/version. *)
  | Corrupt  (** [MYC_ERR_CORRUPT]: shared state violates the format. *)
  | Reader_busy  (** [MYC_ERR_READER_BUSY]: a live reader is attached. *)
  | Schema_mismatch  (** [MYC_ERR_SCHEMA]: the schema digest differs. *)
  | Too_large  (** [MYC_ERR_TOO_LARGE]: payload above the channel maximum. *)
  | Interrupted  (** [MYC_ERR_INTERRUPTED]: a signal arrived while waiting. *)
  | System of int
      (** [MYC_ERR_SYSTEM]: an OS error, with its [errno] ([myc_last_errno]). *)
  | Handle_busy  (** [MYC_ERR_HANDLE_BUSY]: reader used by two threads. *)
  | Closed  (** [MYC_ERR_CLOSED]: the handle was already closed. *)
  | Abandoned
      (** [MYC_ERR_ABANDONED]: an operator force-unblocked this writer's
          claimed frame ({!Channel.force_unblock}); the reader skipped it
          and the frame was dropped, never delivered. *)
  | Too_many_writers
      (** [MYC_ERR_TOO_MANY_WRITERS]: all of the channel's writer slots (32)
          are held by live writers, or by dead writers' claims the reader
          has not skipped yet.  A slot is taken per writing system thread:
          a writer used from several threads takes one for each. *)
  | Foreign
      (** [MYC_ERR_FOREIGN]: attaching was refused: the channel's file is
          owned by another uid, or its mode is wider than the open's. *)
  | Forked
      (** [MYC_ERR_FORKED]: the handle was opened by the parent of this
          forked process; the child's copy refuses every write and read and
          leaves the parent's state alone.  Open a new handle in the child. *)
  | Lapped
      (** [MYC_ERR_LAPPED]: a lossy (or untethered) broadcast reader's
          frame, viewed in place by {!Reader.with_peek}, was overwritten by
          writers while it was held: what was read through the view is not
          reliable.  The reader resumes past the loss, counted in
          {!Reader.lost}. *)
  | Too_many_readers
      (** [MYC_ERR_TOO_MANY_READERS]: every cursor slot of a broadcast
          channel holds a reader (or a durable cursor no reader needs:
          {!Channel.forget_cursor} frees one), or a channel was asked for
          more readers than the header's cursor table has slots (10). *)
  | Unknown of int  (** A result code this binding does not know. *)

type t = {
  code : code;  (** What went wrong. *)
  message : string;  (** The C library's detail text; may be [""]. *)
}
(** An error of the channel API. *)

exception Mycelium_error of t
(** Raised by the [_exn] variants of the API. *)

val code_name : code -> string
(** [code_name c] is the C name of [c], e.g. ["MYC_ERR_FULL"]. *)

val kind_name : code -> string
(** [kind_name c] is the name the Python package and the Rust crate give
    this error, e.g. ["SchemaMismatch"] or ["ChannelNotFound"] (the Python
    exception class).  The examples print it, so tests can look for it in
    any language's output. *)

val to_string : t -> string
(** [to_string e] is ["MYC_ERR_X: message"] (or just the name when the message
    is empty). *)

val pp : Format.formatter -> t -> unit
(** [pp ppf e] prints [to_string e]. *)

val get_exn : ('a, t) result -> 'a
(** [get_exn r] is [v] if [r] is [Ok v]; raises [Mycelium_error e] if [r] is
    [Error e]. *)
