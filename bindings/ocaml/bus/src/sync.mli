(** Waiting helpers for OCaml 4.13 threads, whose [Condition] has no timed
    wait.  Untimed waits use [Condition.wait]; timed ones sleep in short
    slices (1 ms growing to 10 ms), releasing the runtime lock, and re-check
    their predicate: never a busy loop. *)

val with_lock : Mutex.t -> (unit -> 'a) -> 'a
(** [with_lock m f] runs [f ()] with [m] held, releasing it however [f]
    returns or raises. *)

val now : unit -> float
(** [now ()] is [Unix.gettimeofday ()]. *)

val deadline : float option -> float option
(** [deadline timeout] is [Some (now () +. t)] for [Some t]. *)

val wait_until :
  Mutex.t -> Condition.t -> float option -> (unit -> bool) -> bool
(** [wait_until m c deadline ready], with [m] held, waits until [ready ()]
    (true) or the deadline passes (false, unless [ready ()] by then).  [c]
    is signalled by whoever makes [ready] true. *)

val sleep_unless : float -> (unit -> bool) -> unit
(** [sleep_unless seconds stop] sleeps [seconds], returning early (within
    10 ms) once [stop ()] is true. *)
