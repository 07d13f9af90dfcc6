(** The [reader] example program: usage and behaviour in the header of [reader.ml].  It exports nothing. *)
