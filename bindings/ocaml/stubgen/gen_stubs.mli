(** Build-time program: [gen_stubs.exe (c|ml) (functions|blocking)] prints the C stubs or the OCaml module of one functor of [Function_description].  Exports nothing. *)
