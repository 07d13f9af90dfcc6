(** Socket plumbing shared by {!Link} and {!Inbound}: addresses, blocking
    reads and writes (they release the runtime lock), liveness checks. *)

(** Where a socket endpoint listens. *)
type address =
  | Unix_socket of string  (** A Unix-domain stream socket path. *)
  | Tcp of string * int  (** A host (name or IP literal) and port. *)

val describe : address -> string
(** [describe a] is ["unix:PATH"] or ["tcp:HOST:PORT"], as in Python. *)

val sockaddr : address -> (Unix.sockaddr, Bus_error.t) result
(** [sockaddr a] resolves [a] ([Transport] if the host is unknown). *)

val connect : timeout:float -> address -> (Unix.file_descr, Bus_error.t) result
(** [connect ~timeout a] is a connected blocking socket (TCP_NODELAY for
    TCP), or [Transport] with the reason. *)

val set_timeouts : Unix.file_descr -> float -> unit
(** [set_timeouts fd s] sets SO_RCVTIMEO and SO_SNDTIMEO ([0.]: none). *)

val read_exact : Unix.file_descr -> Bytes.t -> int -> int -> [ `Ok | `Eof of int ]
(** [read_exact fd b off n] fills [n] bytes, or [`Eof got] if the peer
    ended the stream after [got] bytes; [Unix.Unix_error] (EAGAIN on a
    receive timeout) otherwise. *)

val write_all : Unix.file_descr -> string -> unit
(** [write_all fd s] writes all of [s]; [Unix.Unix_error] if it cannot. *)

val peer_gone : Unix.file_descr -> bool
(** [peer_gone fd] is whether a peer that never sends (after the hello) has
    closed or reset the connection: a non-blocking one-byte peek. *)

val listen : ?backlog:int -> address -> (Unix.file_descr * address, Bus_error.t) result
(** [listen a] binds and listens; the address comes back with the real port
    when port 0 was asked.  A stale Unix socket file (nobody listening) is
    replaced; a live one, or a file that is not a socket, is an error. *)

val close_quietly : Unix.file_descr -> unit
(** [close_quietly fd] closes [fd], ignoring errors. *)

val ignore_sigpipe : unit -> unit
(** [ignore_sigpipe ()] makes writes to a closed peer fail with EPIPE
    instead of killing the process; the transports call it. *)
