(** Reader cursors of broadcast channels.

    A channel created with [~readers:n] ({!Writer.create}) is read by up to
    [n] readers at once, each at its own cursor in the channel header, and
    every one of them gets every frame.  A reader chooses, when it attaches
    ({!Reader.attach}), its cursor's name, its {!policy} and, for a new
    cursor, where it {!start}s. *)

(** How a reader treats writers. *)
type policy =
  | Tethered
      (** Writers never overwrite a frame this reader has not read: they wait
          for it (within their timeout), unless it dies or stops reading for
          the channel's untether window; then it is untethered (counted in
          [untethers]), reads on what is left and lossily after that, and is
          tethered again once it has caught up.  The default. *)
  | Lossy
      (** Never slows writers.  When lapped, the reader resumes at the oldest
          frame still in the ring and counts exactly the frames it missed
          ([lost]); a frame viewed in place may be overwritten while held
          ({!Reader.with_peek} then fails with [Lapped]). *)

(** Where a new cursor starts (a named cursor that exists resumes at its own
    position). *)
type start =
  | Tail  (** At the tail: the frames written after it attached (the default). *)
  | Oldest  (** At the oldest frame writers still keep in the ring. *)

type info = {
  name : string;  (** The cursor's name, [""] for an anonymous cursor. *)
  slot : int;  (** Its slot in the cursor table. *)
  policy : policy;  (** Its reader's policy. *)
  durable : bool;  (** Named: kept, with its position, after its reader leaves. *)
  tethered : bool;  (** Writers currently wait for it. *)
  pid : int option;  (** Its reader's pid, [None] when none is attached. *)
  alive : bool;  (** Whether that reader still lives. *)
  position : int;  (** Ring position: everything before it is read. *)
  lag : int;  (** Bytes written but not yet read by it. *)
  frames_read : int;  (** Frames it read. *)
  bytes_read : int;  (** Payload bytes it read. *)
  lost : int;  (** Frames it lost when writers lapped it. *)
  laps : int;  (** Times it was lapped. *)
  untethers : int;  (** Times writers untethered it. *)
  attached_ns : int;  (** [CLOCK_REALTIME] of its last attach, in ns. *)
}
(** One reader's cursor ([struct myc_cursor_info]), from
    {!Reader.cursor_info} or {!Channel.cursors}. *)

val policy_name : policy -> string
(** [policy_name p] is ["tethered"] or ["lossy"], as the Python package
    spells it. *)

val policy_of_string : string -> (policy, Error.t) result
(** [policy_of_string s] parses {!policy_name}'s output; [Bad_argument]
    naming the choices otherwise. *)
