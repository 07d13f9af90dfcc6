(** Rate-limited log lines for events a peer can cause at will (bad frames,
    failed connections): a flood must not flood the log.  In each window of
    [interval] seconds the first [burst] events are logged in full; the
    others are only counted, and one summary line
    ["NAME: N more WHAT not logged"] reports them at the first event of a
    later window, at {!tick} once the window is over, or at {!flush} (the
    owner's close).  Safe from any thread. *)

type t
(** A limiter: one per endpoint and kind of event. *)

val create : ?burst:int -> ?interval:float -> ?level:Log.level -> name:string -> string -> t
(** [create ~name what] logs at [level] (default [Warning]) at most [burst]
    (default 5) lines in full per [interval] (default 1 s); summaries read
    ["NAME: N more WHAT not logged"]. *)

val msg : t -> ('a, unit, string, unit) format4 -> 'a
(** [msg t fmt ...] logs one event's line, or counts it if over the budget
    (then the message is not even formatted). *)

val tick : t -> unit
(** [tick t] writes the pending summary if the window is over: cheap when
    nothing is pending (no lock), so it can be called per frame. *)

val flush : t -> unit
(** [flush t] writes the pending summary now, if any. *)

val suppressed : t -> int
(** [suppressed t] is how many events were counted but not logged in full,
    in all. *)
