(** The [writer] example program: usage and behaviour in the header of [writer.ml].  It exports nothing. *)
