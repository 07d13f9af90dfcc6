(** Helpers shared by the examples: arguments, schema choice, exiting on
    errors.  Mirrors bindings/rust/examples/common/mod.rs. *)

val exit_channel_error : int
(** 2: the exit status after a channel or codec error. *)

val exit_usage : int
(** 64: the exit status for bad command-line arguments. *)

val usage : string -> 'a
(** [usage text] prints ["usage: " ^ text] to stderr and exits with
    {!exit_usage}. *)

val die : string -> Mycelium_shm.Error.t -> 'a
(** [die context e] prints ["error: context: Kind: detail"] to stderr, with
    [Kind] the Python exception name ({!Mycelium_shm.Error.kind_name}), and
    exits with {!exit_channel_error}. *)

type args = {
  positional : string list;  (** Arguments not starting with [--], in order. *)
  options : (string * string) list;  (** [--key value] pairs, last first. *)
}
(** Parsed command line. *)

val parse : string -> args
(** [parse usage_text] parses [Sys.argv]; every [--key] takes one value. *)

val opt : args -> string -> string option
(** [opt a key] is the value of the last [--key]. *)

val int_opt : args -> string -> int -> string -> int
(** [int_opt a key default usage_text] is [--key] as an int, or [default]. *)

val positional_int : args -> int -> string -> int
(** [positional_int a i usage_text] is positional argument [i] as an int. *)

val digest : args -> string -> string
(** [digest a usage_text] is the schema digest chosen by
    [--schema trading|vectors] (default trading) or [--digest HEX]. *)
