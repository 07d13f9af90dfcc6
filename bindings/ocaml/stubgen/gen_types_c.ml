(* Print a C program that, compiled against ring.h and run, prints the OCaml
   module Types_generated (sizes, offsets and constants read from C). *)

let () =
  print_endline "#include \"ring.h\"";
  Cstubs_structs.write_c Format.std_formatter
    (module Mycelium_shm_type_description.Type_description.Types)
