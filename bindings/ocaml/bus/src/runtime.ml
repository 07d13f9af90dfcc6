let with_lock = Sync.with_lock

(* -- signals: record, and wake every waiting runtime through its pipe -- *)

let caught : int option ref = ref None
let wake_fds : Unix.file_descr list ref = ref []

let poke fd = try ignore (Unix.single_write_substring fd "x" 0 1) with Unix.Unix_error _ -> ()

let on_signal signum =
  (* No lock here nor in anything called: this may run in any thread, in
     the middle of a critical section of the bus. *)
  if !caught = None then caught := Some signum;
  List.iter poke !wake_fds

let install_signals () =
  List.iter (fun s -> Sys.set_signal s (Sys.Signal_handle on_signal)) [ Sys.sigint; Sys.sigterm ]

let signalled () = !caught

let signal_name s =
  if s = Sys.sigterm then "SIGTERM" else if s = Sys.sigint then "SIGINT" else string_of_int s

(* -- hosts -------------------------------------------------------------------- *)

type spec = {
  name : string;
  consumes : string list option;
  config : Yojson.Safe.t;
  factory : Service.factory;
}

type host = {
  spec : spec;
  mutable instance : Service.t option;
  mutable mailbox : Msg.packed Subscriber.t option;
  mutable restarts : int;
  mutable failures : int;
  mutable failed : bool;
  mutable finished : bool;
}

type t = {
  bus : Bus.t;
  hosts : host list;
  mailbox_size : int;
  restart_initial : float;
  restart_max : float;
  max_restarts : int option;
  m : Mutex.t;
  c : Condition.t;
  mutable stop_requested : bool;
  mutable stopping : bool;
  mutable started : bool;
  mutable stopped : bool;
  wake_r : Unix.file_descr;
  wake_w : Unix.file_descr;
}

let create ?(mailbox_size = 8192) ?(restart_initial = 0.05) ?(restart_max = 5.0) ?max_restarts bus
    specs =
  let wake_r, wake_w = Unix.pipe ~cloexec:true () in
  Unix.set_nonblock wake_w;
  wake_fds := wake_w :: !wake_fds;
  {
    bus;
    hosts =
      List.map
        (fun spec ->
          { spec; instance = None; mailbox = None; restarts = 0; failures = 0; failed = false; finished = false })
        specs;
    mailbox_size;
    restart_initial;
    restart_max;
    max_restarts;
    m = Mutex.create ();
    c = Condition.create ();
    stop_requested = false;
    stopping = false;
    started = false;
    stopped = false;
    wake_r;
    wake_w;
  }

let bus rt = rt.bus
let stopping rt = rt.stop_requested || rt.stopping

let request_stop rt =
  rt.stop_requested <- true;
  poke rt.wake_w

let context rt host =
  Service.context ~name:host.spec.name ~bus:rt.bus ~config:host.spec.config
    ~stopping:(fun () -> stopping rt)
    ~request_stop:(fun () -> request_stop rt)

let call host what f =
  match f () with
  | () -> true
  | exception e ->
      let bt = Printexc.get_backtrace () in
      Log.err "service %s: %s raised %s%s" host.spec.name what (Printexc.to_string e)
        (if bt = "" then ""
         else " (" ^ String.concat "; " (String.split_on_char '\n' (String.trim bt)) ^ ")");
      false

(* Back off, then build and start a fresh instance; None if giving up or stopping. *)
let rec restart rt host =
  host.failures <- host.failures + 1;
  match rt.max_restarts with
  | Some n when host.failures > n ->
      Log.err "service %s failed %d times in a row; giving up, stopping the node" host.spec.name
        host.failures;
      host.failed <- true;
      request_stop rt;
      None
  | _ -> (
      let delay =
        Float.min rt.restart_max (rt.restart_initial *. (2. ** float_of_int (host.failures - 1)))
      in
      Log.warn "service %s: restart %d in %.3f s" host.spec.name (host.restarts + 1) delay;
      Sync.sleep_unless delay (fun () -> rt.stopping);
      if rt.stopping then None
      else (
        host.restarts <- host.restarts + 1;
        match host.spec.factory (context rt host) with
        | Error reason ->
            Log.err "service %s: constructing a fresh instance failed: %s" host.spec.name reason;
            restart rt host
        | exception e ->
            Log.err "service %s: constructing a fresh instance raised %s" host.spec.name
              (Printexc.to_string e);
            restart rt host
        | Ok inst ->
            host.instance <- Some inst;
            if call host "on_start" inst.Service.on_start then Some inst else restart rt host))

let dispatch (inst : Service.t) (Msg.Pack (m, v)) =
  let rec go = function
    | [] -> `Unhandled
    | Service.Handler (m', f) :: rest -> (
        match Msg.same m' m with
        | Some Msg.Refl -> `Call (fun () -> f v)
        | None -> if Msg.type_id m' = Msg.type_id m then (
            match Msg.encode m v with
            | Ok p -> (match Msg.decode m' p with Ok v' -> `Call (fun () -> f v') | Error _ -> go rest)
            | Error _ -> go rest) else go rest)
  in
  go inst.handlers

let host_main rt host =
  let inst = Option.get host.instance in
  let current = ref (if call host "on_start" inst.Service.on_start then Some inst else restart rt host) in
  (match host.mailbox with
  | None ->
      if !current <> None then
        with_lock rt.m (fun () -> ignore (Sync.wait_until rt.m rt.c None (fun () -> rt.stopping)))
  | Some mb ->
      let rec loop () =
        match !current with
        | None -> ()
        | Some inst -> (
            match Subscriber.get mb with
            | Error _ -> ()
            | Ok (Msg.Pack (m, _) as p) ->
                (match dispatch inst p with
                | `Unhandled ->
                    Log.warn "service %s: no handler for %s after a restart; dropped" host.spec.name
                      (Msg.name m)
                | `Call f ->
                    if call host ("handler for " ^ Msg.name m) f then host.failures <- 0
                    else current := restart rt host);
                loop ())
      in
      loop ());
  (match !current with
  | Some inst -> ignore (call host "on_stop" inst.Service.on_stop)
  | None -> ());
  with_lock rt.m (fun () ->
      host.finished <- true;
      Condition.broadcast rt.c)

let open_host rt host =
  let ( let* ) = Result.bind in
  let fail fmt = Printf.ksprintf (fun s -> Error (Bus_error.Service s)) fmt in
  let* inst =
    match host.spec.factory (context rt host) with
    | Ok i -> Ok i
    | Error reason -> fail "service %s: %s" host.spec.name reason
    | exception e -> fail "service %s: factory raised %s" host.spec.name (Printexc.to_string e)
  in
  let names = List.map (fun (Service.Handler (m, _)) -> Msg.name m) inst.Service.handlers in
  let* () =
    match host.spec.consumes with
    | None -> Ok ()
    | Some allowed -> (
        match List.filter (fun n -> not (List.mem n allowed)) names with
        | [] -> Ok ()
        | missing ->
            fail "service %s handles %s but the topology does not list it under consumes"
              host.spec.name (String.concat ", " missing))
  in
  host.instance <- Some inst;
  (if inst.Service.handlers <> [] then
     let mb = Subscriber.create ~capacity:rt.mailbox_size ~overflow:Subscriber.Block () in
     List.iter
       (fun (Service.Handler (m, _)) -> ignore (Bus.feed rt.bus m mb (fun v -> Msg.Pack (m, v))))
       inst.Service.handlers;
     host.mailbox <- Some mb);
  Ok ()

let start rt =
  if rt.started then Ok ()
  else (
    rt.started <- true;
    let rec open_all = function
      | [] -> Ok ()
      | h :: rest -> ( match open_host rt h with Ok () -> open_all rest | Error _ as e -> e)
    in
    match open_all rt.hosts with
    | Error _ as e ->
        List.iter (fun h -> Option.iter Subscriber.close h.mailbox) rt.hosts;
        List.iter (fun h -> h.finished <- true) rt.hosts;
        e
    | Ok () ->
        List.iter (fun h -> ignore (Thread.create (host_main rt) h)) rt.hosts;
        Bus.start rt.bus;
        Log.info "node %s: started %s" (Bus.name rt.bus)
          (String.concat ", " (List.map (fun h -> h.spec.name) rt.hosts));
        Ok ())

(* The main thread blocks in read() on the wake pipe.  kill(pid) targets
   the main thread first on Linux, so its read ends with EINTR, the OCaml
   handler runs as the thread leaves the blocking section and pokes the
   pipe; a signal taken by another thread pokes it from there. *)
let wait rt =
  let b = Bytes.create 16 in
  while not (rt.stop_requested || !caught <> None) do
    match Unix.read rt.wake_r b 0 16 with
    | _ -> ()
    | exception Unix.Unix_error (Unix.EINTR, _, _) -> ()
  done

let stop ?(timeout = 5.0) rt =
  if not rt.stopped then (
    rt.stopped <- true;
    rt.stop_requested <- true;
    with_lock rt.m (fun () ->
        rt.stopping <- true;
        Condition.broadcast rt.c);
    Bus.close_inbound rt.bus;
    List.iter
      (fun h ->
        Option.iter Subscriber.close h.mailbox;
        let done_ =
          with_lock rt.m (fun () ->
              Sync.wait_until rt.m rt.c (Sync.deadline (Some timeout)) (fun () -> h.finished))
        in
        if rt.started && not done_ then
          Log.warn "service %s did not stop within %.1f s" h.spec.name timeout)
      rt.hosts;
    Bus.close ~timeout rt.bus;
    wake_fds := List.filter (fun fd -> fd != rt.wake_w) !wake_fds;
    Sock.close_quietly rt.wake_r;
    Sock.close_quietly rt.wake_w;
    Log.info "node %s: stopped" (Bus.name rt.bus))

let failed rt = List.exists (fun h -> h.failed) rt.hosts

let run ?(handle_signals = true) rt =
  if handle_signals then install_signals ();
  let code =
    if !caught <> None then 0
    else
      match start rt with
      | Error e ->
          Log.err "node %s: %s" (Bus.name rt.bus) (Bus_error.to_string e);
          2
      | Ok () ->
          wait rt;
          0
  in
  (match !caught with
  | Some s -> Log.info "node %s: %s, shutting down" (Bus.name rt.bus) (signal_name s)
  | None -> ());
  stop rt;
  if code <> 0 then code else if failed rt then 1 else 0

let restarts rt name =
  match List.find_opt (fun h -> h.spec.name = name) rt.hosts with
  | Some h -> h.restarts
  | None -> raise Not_found
