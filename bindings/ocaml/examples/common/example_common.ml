let exit_channel_error = 2
let exit_usage = 64

let usage text =
  prerr_endline ("usage: " ^ text);
  exit exit_usage

let die context (e : Mycelium_shm.Error.t) =
  let open Mycelium_shm.Error in
  let kind = kind_name e.code in
  if e.message = "" then Printf.eprintf "error: %s: %s\n%!" context kind
  else Printf.eprintf "error: %s: %s: %s\n%!" context kind e.message;
  exit exit_channel_error

type args = { positional : string list; options : (string * string) list }

let parse text =
  let rec go pos opts = function
    | [] -> { positional = List.rev pos; options = opts }
    | a :: rest when String.length a > 2 && String.sub a 0 2 = "--" -> (
        match rest with
        | v :: rest -> go pos ((String.sub a 2 (String.length a - 2), v) :: opts) rest
        | [] -> usage text)
    | a :: rest -> go (a :: pos) opts rest
  in
  go [] [] (List.tl (Array.to_list Sys.argv))

let opt a key = List.assoc_opt key a.options

let int_opt a key default text =
  match opt a key with
  | None -> default
  | Some v -> ( match int_of_string_opt v with Some n -> n | None -> usage text)

let positional_int a i text =
  match List.nth_opt a.positional i with
  | Some v -> ( match int_of_string_opt v with Some n -> n | None -> usage text)
  | None -> usage text

let digest a text =
  match opt a "digest" with
  | Some hex ->
      if String.length hex <> 64 then usage text;
      String.init 32 (fun i ->
          match int_of_string_opt ("0x" ^ String.sub hex (2 * i) 2) with
          | Some b -> Char.chr b
          | None -> usage text)
  | None -> (
      match Option.value (opt a "schema") ~default:"trading" with
      | "trading" -> Trading.schema_digest
      | "vectors" -> Schema.schema_digest
      | _ -> usage text)
