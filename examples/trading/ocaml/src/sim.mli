(** What the OCaml services of the trading example share: message
    descriptors, the price and checksum conventions of
    examples/trading/trading_sim.py, audit files, and the rule that a node
    stops once every service it hosts has finished. *)

open Trading_messages

(** {1 Message descriptors} (one per type, shared by every service) *)

val signal : Trading.Signal.t Mycelium_bus.Msg.t
val order_request : Trading.OrderRequest.t Mycelium_bus.Msg.t
val fill : Trading.Fill.t Mycelium_bus.Msg.t
val end_of_signals : Trading.EndOfSignals.t Mycelium_bus.Msg.t
val end_of_orders : Trading.EndOfOrders.t Mycelium_bus.Msg.t
val end_of_fills : Trading.EndOfFills.t Mycelium_bus.Msg.t

(** {1 Prices and checksums} *)

val pips : float -> int
(** [pips x] is the nearest whole pip of price [x]:
    [floor (x *. 100000. +. 0.5)]. *)

val fill_record : Trading.Fill.t -> string
(** [fill_record f] is the checksum record of [f], byte for byte the one of
    trading_sim.py and the Rust venue (floats as IEEE-754 bit patterns). *)

type fnv
(** A running FNV-1a 64 hash. *)

val fnv : unit -> fnv
(** [fnv ()] is the hash of nothing. *)

val fnv_update : fnv -> string -> unit
(** [fnv_update h s] hashes the bytes of [s] too. *)

val fnv_hex : fnv -> string
(** [fnv_hex h] is the hash as 16 lowercase hex digits. *)

(** {1 Time} *)

val monotonic_ns : unit -> int
(** [monotonic_ns ()] is CLOCK_MONOTONIC in nanoseconds: the clock of the
    ticks' [ts_ns], one clock for every process of the machine. *)

val percentiles : int list -> Yojson.Safe.t
(** [percentiles ns] is [{"p50", "p99", "p99.9", "max"}] of latencies in
    nanoseconds, as microseconds (nearest rank; [{}] if there are none), as
    [percentiles] of trading_sim.py computes them. *)

(** {1 Files and output} *)

val open_audit : string -> string -> (out_channel, string) result
(** [open_audit dir name] opens [dir/name] (making [dir]), truncated the
    first time in this process and appended to after that (a restarted
    service keeps its predecessor's lines). *)

val emit : string -> Yojson.Safe.t -> unit
(** [emit tag json] prints the line [TAG {json}] on stdout. *)

(** {1 Finishing} *)

val register : string -> unit
(** [register name]: a service of this process exists (idempotent).  Call
    it from the factory: the runtime builds every service before starting
    any. *)

val finished : string -> bool
(** [finished name] records that [name] is done and is [true] if every
    registered service of this process is. *)
