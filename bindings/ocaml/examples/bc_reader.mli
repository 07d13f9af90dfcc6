(** The [bc_reader] example program: usage and behaviour in the header of [bc_reader.ml].  It exports nothing. *)
