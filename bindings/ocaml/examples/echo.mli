(** The [echo] example program: usage and behaviour in the header of [echo.ml].  It exports nothing. *)
