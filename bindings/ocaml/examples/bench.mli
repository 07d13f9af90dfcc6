(** The [bench] example program: usage and behaviour in the header of [bench.ml].  It exports nothing. *)
