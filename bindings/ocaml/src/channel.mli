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

(** The claim {!force_unblock} revoked. *)
type unblocked = {
  pid : int;  (** The process whose writer had claimed the frame. *)
  position : int;  (** The frame's ring position (a byte count). *)
}

val force_unblock : string -> (unblocked, Error.t) result
(** [force_unblock name] is the operator's escape hatch: it revokes the
    unfinished claim of a live writer that holds the reader of channel
    [name] (a writer stopped, or stuck, between claiming a frame and
    committing it; {!inspect} shows it as [stalled_pid]).  The reader skips
    the frame and goes on; none of its bytes reach a reader, and its
    writer's commit fails with [Abandoned].  Writers do not reuse the
    frame's space until that writer has returned or died ([hold_position]
    in {!inspect}).  A dead writer's claim needs none of this: the reader
    skips it by itself.

    Errors: [Empty] if no claim holds the reader (nothing to do, or the
    frame was committed meanwhile); [Reader_busy] if the claim cannot be
    revoked yet (its writer has not written the frame header, or an earlier
    revoked claim is still held); [Not_found] if there is no such channel.

    {[
      match Channel.force_unblock "prices" with
      | Ok { Channel.pid; position } ->
          Printf.printf "revoked writer %d's frame at %d\n" pid position
      | Error { Error.code = Error.Empty; _ } -> print_endline "not stalled"
      | Error e -> prerr_endline (Error.to_string e)
    ]} *)

val cursors : string -> (Cursor.info list, Error.t) result
(** [cursors name] lists the readers' cursors of the broadcast channel
    [name] in slot order, without attaching to it; [[]] for a single-reader
    channel. *)

val register_cursor : string -> string -> (unit, Error.t) result
(** [register_cursor name cursor] creates the durable, tethered cursor
    [cursor] of the broadcast channel [name] at its tail, held by nobody,
    so that writers keep every later frame for a reader that attaches it
    later (what attaching it and closing would leave, without the moment
    in which this process holds it).  [Ok ()] if it exists already, held or
    not; [Too_many_readers] if no slot is free; [Bad_argument] on a
    single-reader channel or a bad name. *)

val forget_cursor : string -> string -> (unit, Error.t) result
(** [forget_cursor name cursor] frees the durable cursor [cursor] of the
    broadcast channel [name]: writers stop keeping frames for it and its
    slot is free for another reader.  [Reader_busy] while a live reader
    holds it; [Not_found] if there is no cursor of that name (or no such
    channel); [Bad_argument] on a single-reader channel. *)

val max_readers : int
(** The most readers a broadcast channel can have ([MYC_READER_SLOTS], 10). *)

val cursor_name_max : int
(** The longest cursor name in bytes of UTF-8 ([MYC_CURSOR_NAME_MAX], 39). *)

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
