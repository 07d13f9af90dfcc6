(** Build-time program: prints a C program that prints [Types_generated] (the sizes, offsets and constants of [ring.h]).  Exports nothing. *)
