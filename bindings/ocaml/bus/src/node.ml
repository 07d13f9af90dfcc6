type registry = (string * Service.factory) list

let build ?mailbox_size ?restart_initial ?restart_max ?max_restarts (module S : Mycelium_codec.SCHEMA)
    registry (plan : Plan.t) =
  let ( let* ) = Result.bind in
  let plan_err fmt = Printf.ksprintf (fun s -> Error (Bus_error.Plan s)) fmt in
  let* digest =
    match Wire.digest_of_hex plan.digest_hex with Ok d -> Ok d | Error e -> plan_err "%s" e
  in
  let* () =
    if digest <> S.schema_digest then
      Error
        (Bus_error.Schema_mismatch
           (Printf.sprintf "the plan's schema %s (digest %s...) is not the one compiled in (%s...)"
              plan.schema_path (String.sub plan.digest_hex 0 16)
              (String.sub S.schema_digest_hex 0 16)))
    else Ok ()
  in
  let type_id name =
    match List.assoc_opt name S.messages with
    | Some id -> Ok id
    | None -> plan_err "message type %S is not in the schema" name
  in
  let rec all f = function
    | [] -> Ok []
    | x :: rest ->
        let* y = f x in
        let* ys = all f rest in
        Ok (y :: ys)
  in
  let* link_types = all (fun (l : Plan.link) -> all type_id l.types) plan.links in
  let* pub_types =
    match plan.publication with None -> Ok [] | Some p -> all type_id p.Plan.pub_types
  in
  let* specs =
    all
      (fun (s : Plan.service) ->
        match List.assoc_opt s.name registry with
        | None ->
            plan_err "service %S is not compiled into this node (it has: %s)" s.name
              (String.concat ", " (List.map fst registry))
        | Some factory ->
            Ok { Runtime.name = s.name; consumes = Some s.consumes; config = s.config; factory })
      plan.services
  in
  let bus = Bus.create ~name:plan.node ~digest () in
  let* () =
    match plan.inbound with
    | None -> Ok ()
    | Some ep -> (
        let r =
          match ep with
          | Plan.Shm { name; capacity } -> Inbound.shm ~capacity ~digest name
          | Plan.Unix_socket p -> Inbound.socket ~digest (Sock.Unix_socket p)
          | Plan.Tcp { host; port } -> Inbound.socket ~digest (Sock.Tcp (host, port))
        in
        match r with
        | Ok ep -> Ok (Bus.add_inbound bus ep)
        | Error e ->
            Bus.close ~timeout:0. bus;
            Error e)
  in
  List.iter2
    (fun (l : Plan.link) ids ->
      let link =
        match l.endpoint with
        | Plan.Shm { name; _ } -> Link.shm ~digest name
        | Plan.Unix_socket p -> Link.socket ~digest (Sock.Unix_socket p)
        | Plan.Tcp { host; port } -> Link.socket ~digest (Sock.Tcp (host, port))
      in
      Bus.add_link bus link ids)
    plan.links link_types;
  let fail e =
    Bus.close ~timeout:0. bus;
    Error e
  in
  let* () =
    match plan.publication with
    | None -> Ok ()
    | Some p -> (
        match
          Link.shm_publication ~capacity:p.pub_capacity ~spare_readers:p.spare_readers
            ~untether:(float_of_int p.untether_ms /. 1000.) ~digest ~subscribers:p.subscribers
            p.pub_name
        with
        | Ok link -> Ok (Bus.add_link bus link pub_types)
        | Error e -> fail e)
  in
  let* () =
    all
      (fun (s : Plan.subscription) ->
        match Inbound.shm_subscription ~digest ~cursor:s.cursor s.channel with
        | Ok ep -> Ok (Bus.add_inbound bus ep)
        | Error e -> fail e)
      plan.subscriptions
    |> Result.map ignore
  in
  Ok (Runtime.create ?mailbox_size ?restart_initial ?restart_max ?max_restarts bus specs)

let plan_path argv =
  let rec find = function
    | "--plan" :: p :: _ -> Some p
    | a :: rest ->
        let pre = "--plan=" in
        let n = String.length pre in
        if String.length a > n && String.sub a 0 n = pre then Some (String.sub a n (String.length a - n))
        else find rest
    | [] -> None
  in
  match find (List.tl (Array.to_list argv)) with
  | Some p -> Some p
  | None -> Sys.getenv_opt "MYCELIUM_BUS_PLAN"

let main ?(argv = Sys.argv) ?mailbox_size ?restart_initial ?restart_max ?max_restarts schema registry =
  Runtime.install_signals ();
  Printexc.record_backtrace true;
  let die e =
    Log.err "%s" (Bus_error.to_string e);
    exit 2
  in
  match plan_path argv with
  | None -> die (Bus_error.Plan "no plan: pass --plan PATH or set MYCELIUM_BUS_PLAN")
  | Some path -> (
      match Plan.load path with
      | Error e -> die e
      | Ok plan -> (
          Log.set_prefix plan.node;
          match build ?mailbox_size ?restart_initial ?restart_max ?max_restarts schema registry plan with
          | Error e -> die e
          | Ok rt -> exit (Runtime.run rt)))
