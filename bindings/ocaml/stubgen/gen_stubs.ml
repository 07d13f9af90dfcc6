(* gen_stubs.exe (c|ml) (functions|blocking): print the C stubs or the OCaml
   module for one of the functors of Function_description. *)

module D = Mycelium_shm_function_description.Function_description

let () =
  let lang, which =
    match Sys.argv with
    | [| _; lang; which |] -> (lang, which)
    | _ ->
        prerr_endline "usage: gen_stubs (c|ml) (functions|blocking)";
        exit 2
  in
  let fmt = Format.std_formatter in
  let prefix = "mycelium_shm_" ^ which in
  let concurrency =
    match which with
    | "functions" -> Cstubs.sequential
    | "blocking" -> Cstubs.unlocked
    | _ ->
        prerr_endline ("unknown functor: " ^ which);
        exit 2
  in
  let write_c m =
    Format.fprintf fmt "#include \"ring.h\"@\n";
    Cstubs.write_c ~concurrency fmt ~prefix m
  in
  let write_ml m = Cstubs.write_ml ~concurrency fmt ~prefix m in
  match (lang, which) with
  | "c", "functions" -> write_c (module D.Functions)
  | "c", "blocking" -> write_c (module D.Blocking)
  | "ml", "functions" -> write_ml (module D.Functions)
  | "ml", "blocking" -> write_ml (module D.Blocking)
  | _ ->
      prerr_endline ("unknown output: " ^ lang);
      exit 2
