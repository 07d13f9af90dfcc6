(** One-line logs on stderr, prefixed with the node's name (the node
    process contract: ["[risk] service order_manager: restart 1 in 0.050 s"]).
    Safe from any thread; newlines inside a message are replaced by spaces. *)

type level = Debug | Info | Warning | Error  (** Severity. *)

val set_prefix : string -> unit
(** [set_prefix node] prefixes every later line with ["[node] "]. *)

val set_level : level -> unit
(** [set_level l] drops messages below [l] (default [Info]; the environment
    variable [MYCELIUM_BUS_LOG=debug] lowers it to [Debug]). *)

val msg : level -> ('a, unit, string, unit) format4 -> 'a
(** [msg level fmt ...] writes one line if [level] is enabled. *)

val debug : ('a, unit, string, unit) format4 -> 'a
(** [debug] is [msg Debug]. *)

val info : ('a, unit, string, unit) format4 -> 'a
(** [info] is [msg Info]. *)

val warn : ('a, unit, string, unit) format4 -> 'a
(** [warn] is [msg Warning]. *)

val err : ('a, unit, string, unit) format4 -> 'a
(** [err] is [msg Error]. *)
