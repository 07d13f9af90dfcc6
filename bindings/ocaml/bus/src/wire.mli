(** The socket wire protocol of [mycelium_shm/bus/transports/socket.py],
    byte for byte (all integers little-endian):
{v
    hello   +----------+---------+-------------+----------------+
            | magic 8  | ver u32 | max_pay u32 | schema digest  |
            | MYCELBUS |    1    |             |   32 bytes     |
            +----------+---------+-------------+----------------+
    frame   +---------+---------+----------+---------------------+
            | len u32 | type u16| flags u16| payload (len-8 B)   |
            +---------+---------+----------+---------------------+
v}
    Each side sends its hello first and checks the peer's: a different
    digest is a schema mismatch on both sides.  [len] counts the 8-byte
    header; the largest payload is the smaller of the two [max_pay]; every
    frame's length and type are checked before its payload is read. *)

val magic : string
(** ["MYCELBUS"]. *)

val version : int
(** [1]. *)

val hello_size : int
(** [48]. *)

val header_size : int
(** [8]. *)

val digest_size : int
(** [32]. *)

val default_max_payload : int
(** [1 lsl 20], as in Python. *)

val hello : max_payload:int -> digest:string -> string
(** [hello ~max_payload ~digest] is this side's 48-byte hello; [digest] is
    the raw 32-byte schema digest. *)

val check_hello :
  digest:string -> max_payload:int -> string -> (int, Bus_error.t) result
(** [check_hello ~digest ~max_payload peer] checks a peer's 48-byte hello:
    [Ok limit], the agreed largest payload; [Transport] for another magic or
    version, [Schema_mismatch] for another digest. *)

val add_frame_header : Buffer.t -> type_id:int -> payload_len:int -> unit
(** [add_frame_header b ~type_id ~payload_len] appends a frame header. *)

val check_header :
  limit:int -> Bytes.t -> int -> (int * int, Bus_error.t) result
(** [check_header ~limit buf off] reads the header at [off]:
    [Ok (payload_len, type_id)], or [Transport] if the length is below 8 or
    its payload above [limit], or the type is 0. *)

val digest_of_hex : string -> (string, string) result
(** [digest_of_hex h] is the 32 bytes of the 64 hex digits [h]. *)

val hex : string -> string
(** [hex s] is [s] in lowercase hex. *)
