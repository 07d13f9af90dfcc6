(** Operations on a channel as a whole, by name.

    A channel [name] is the POSIX shared-memory object ["/mycelium." ^ name]
    (a file under [/dev/shm]).  It stays until {!unlink}ed, even when no
    process has it open. *)

val check_name : string -> (unit, Error.t) result
(** [check_name name] is [Ok ()] if [name] is a valid channel name, else
    [Error] with code [Invalid_name] and the reason. *)

val unlink : string -> (unit, Error.t) result
(** [unlink name] removes the channel's shared-memory object; open handles
    stay usable.  [Not_found] if there is none. *)

val unlink_if_exists : string -> unit
(** [unlink_if_exists name] is {!unlink} ignoring every error, for cleanup. *)

val inspect : string -> (Info.t, Error.t) result
(** [inspect name] validates the channel's header and reports its state
    without attaching as reader or writer. *)

val exists : string -> bool
(** [exists name] is whether {!inspect} finds a channel [name]. *)

val digest_size : int
(** The size of a schema digest in bytes ([MYC_DIGEST_SIZE], 32). *)

val min_capacity : int
(** The smallest ring capacity in bytes ([MYC_MIN_CAPACITY]). *)

val max_type_id : int
(** The largest frame type id ([MYC_TYPE_ID_MAX]). *)

val name_max : int
(** The longest channel name in bytes ([MYC_NAME_MAX]). *)

val pid_alive : int -> bool
(** [pid_alive pid] is whether a process [pid] is running. *)
