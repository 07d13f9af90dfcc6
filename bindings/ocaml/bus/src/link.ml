open Mycelium_shm

type t = {
  name : string;
  send : int -> string -> (unit, Bus_error.t) result;
  flush : float option -> (bool, Bus_error.t) result;
  wait_connected : float option -> (bool, Bus_error.t) result;
  connected : unit -> bool;
  pending : unit -> int;
  stats : unit -> (string * int) list;
  close : float -> unit;
}

let name l = l.name
let send l ~type_id payload = l.send type_id payload
let flush ?timeout l = l.flush timeout
let wait_connected ?timeout l = l.wait_connected timeout
let connected l = l.connected ()
let pending l = l.pending ()
let stats l = l.stats ()
let close ?(timeout = 5.0) l = l.close timeout

let with_lock = Sync.with_lock

let check_type_id type_id =
  if type_id < 1 || type_id > 0xFFFF then
    Error (Bus_error.Transport (Printf.sprintf "type id %d is outside 1..65535" type_id))
  else Ok ()

(* -- shared memory ------------------------------------------------------- *)

type shm = {
  channel : string;
  sname : string;
  digest : string;
  timeout_ns : int;
  max_pending : int;
  m : Mutex.t;
  c : Condition.t;
  queue : (int * string) Queue.t;
  mutable writer : Writer.t option;
  mutable fatal : Bus_error.t option;
  mutable closing : bool;
  mutable attach_done : bool;
  mutable sent : int;
}

let rec shm_write s w type_id payload =
  match Writer.write ~timeout_ns:s.timeout_ns w ~type_id payload with
  | Ok () ->
      s.sent <- s.sent + 1;
      Ok ()
  | Error { Error.code = Error.Interrupted; _ } ->
      (* A signal (e.g. the SIGTERM that stops the node) ended the wait for
         room; the frame is not written yet: wait again. *)
      shm_write s w type_id payload
  | Error e -> Error (Bus_error.of_channel e)

(* true when done trying (attached, or a permanent error) *)
let shm_try_attach s =
  match Writer.attach ~schema_digest:s.digest s.channel with
  | Error { Error.code = Error.Not_found; _ } -> false
  | Error e ->
      let e = Bus_error.of_channel e in
      Log.err "link %s: %s" s.sname (Bus_error.to_string e);
      with_lock s.m (fun () ->
          s.fatal <- Some e;
          Condition.broadcast s.c);
      true
  | Ok w ->
      with_lock s.m (fun () ->
          let rec drain () =
            match Queue.peek_opt s.queue with
            | None -> Ok ()
            | Some (type_id, payload) -> (
                match shm_write s w type_id payload with
                | Ok () ->
                    ignore (Queue.pop s.queue);
                    drain ()
                | Error _ as e -> e)
          in
          (match drain () with
          | Ok () -> s.writer <- Some w
          | Error e ->
              Log.err "link %s: writing queued frames failed: %s" s.sname (Bus_error.to_string e);
              Writer.close w;
              s.fatal <- Some e);
          Condition.broadcast s.c);
      Log.debug "link %s: attached" s.sname;
      true

let shm ?(send_timeout = 5.0) ?(max_pending = 65536) ?(backoff_initial = 0.005)
    ?(backoff_max = 0.5) ~digest channel =
  let s =
    {
      channel;
      sname = "shm:" ^ channel;
      digest;
      timeout_ns = Float.to_int (send_timeout *. 1e9);
      max_pending;
      m = Mutex.create ();
      c = Condition.create ();
      queue = Queue.create ();
      writer = None;
      fatal = None;
      closing = false;
      attach_done = false;
      sent = 0;
    }
  in
  let finish_attach () =
    with_lock s.m (fun () ->
        s.attach_done <- true;
        Condition.broadcast s.c)
  in
  if shm_try_attach s then finish_attach ()
  else
    ignore
      (Thread.create
         (fun () ->
           let rec loop delay =
             if not s.closing then
               if not (shm_try_attach s) then (
                 Sync.sleep_unless delay (fun () -> s.closing);
                 loop (Float.min (delay *. 2.) backoff_max))
           in
           loop backoff_initial;
           finish_attach ())
         ());
  let send type_id payload =
    match check_type_id type_id with
    | Error _ as e -> e
    | Ok () -> (
        match s.writer with
        | Some w -> shm_write s w type_id payload
        | None ->
            with_lock s.m (fun () ->
                match (s.fatal, s.writer) with
                | Some e, _ -> Error e
                | None, _ when s.closing -> Error (Bus_error.Closed ("link " ^ s.sname ^ " is closed"))
                | None, Some w -> shm_write s w type_id payload
                | None, None ->
                    if Queue.length s.queue >= s.max_pending then
                      Error
                        (Bus_error.Full
                           (Printf.sprintf "link %s: channel absent and %d frames queued" s.sname
                              s.max_pending))
                    else (
                      Queue.push (type_id, payload) s.queue;
                      Ok ())))
  in
  let flush timeout =
    with_lock s.m (fun () ->
        let ready () = Queue.is_empty s.queue || s.fatal <> None in
        let ok = Sync.wait_until s.m s.c (Sync.deadline timeout) ready in
        match s.fatal with Some e -> Error e | None -> Ok ok)
  in
  let wait_connected timeout =
    with_lock s.m (fun () ->
        let ready () = s.writer <> None || s.fatal <> None in
        let ok = Sync.wait_until s.m s.c (Sync.deadline timeout) ready in
        match s.fatal with Some e -> Error e | None -> Ok ok)
  in
  let close timeout =
    let _ = flush (Some timeout) in
    let left =
      with_lock s.m (fun () ->
          s.closing <- true;
          Condition.broadcast s.c;
          Queue.length s.queue)
    in
    if left > 0 then Log.warn "link %s closed with %d frames undelivered (no channel)" s.sname left;
    with_lock s.m (fun () ->
        ignore (Sync.wait_until s.m s.c (Sync.deadline (Some timeout)) (fun () -> s.attach_done)));
    match s.writer with
    | None -> ()
    | Some w ->
        s.writer <- None;
        Writer.close w
  in
  {
    name = s.sname;
    send;
    flush;
    wait_connected;
    connected = (fun () -> s.writer <> None);
    pending = (fun () -> Queue.length s.queue);
    stats = (fun () -> [ ("sent", s.sent); ("lost", 0); ("connects", if s.writer <> None then 1 else 0) ]);
    close;
  }

(* -- sockets ---------------------------------------------------------------- *)

type sock = {
  address : Sock.address;
  kname : string;
  kdigest : string;
  max_payload : int;
  kmax_pending : int;
  send_timeout : float;
  connect_timeout : float;
  km : Mutex.t;
  kc : Condition.t;
  kqueue : (int * string) Queue.t;
  mutable in_flight : int;
  mutable fd : Unix.file_descr option;
  mutable peer_max : int;
  mutable kfatal : Bus_error.t option;
  mutable kclosing : bool;
  mutable kclosed : bool;
  mutable thread_done : bool;
  mutable ksent : int;
  mutable lost : int;
  mutable connects : int;
}

let handshake k fd =
  match
    Sock.write_all fd (Wire.hello ~max_payload:k.max_payload ~digest:k.kdigest);
    let b = Bytes.create Wire.hello_size in
    match Sock.read_exact fd b 0 Wire.hello_size with
    | `Ok -> Wire.check_hello ~digest:k.kdigest ~max_payload:k.max_payload (Bytes.to_string b)
    | `Eof 0 -> Error (Bus_error.Transport "peer closed the connection during the handshake")
    | `Eof n ->
        Error
          (Bus_error.Transport
             (Printf.sprintf "connection closed inside a record (%d of 48 bytes)" n))
  with
  | r -> r
  | exception Unix.Unix_error ((Unix.EAGAIN | Unix.EWOULDBLOCK), _, _) ->
      Error (Bus_error.Transport "no hello from the peer in time")
  | exception Unix.Unix_error (e, fn, _) ->
      Error (Bus_error.Transport (fn ^ ": " ^ Unix.error_message e))

let sock_connect k =
  match Sock.connect ~timeout:k.connect_timeout k.address with
  | Error _ as e -> e
  | Ok fd -> (
      match handshake k fd with
      | Ok limit ->
          Sock.set_timeouts fd 0.;
          Ok (fd, limit)
      | Error _ as e ->
          Sock.close_quietly fd;
          e)

(* Write queued frames until idle and closing (true) or broken (false). *)
let rec pump k fd =
  Mutex.lock k.km;
  ignore
    (Sync.wait_until k.km k.kc None (fun () -> (not (Queue.is_empty k.kqueue)) || k.kclosing));
  if Queue.is_empty k.kqueue then (
    Mutex.unlock k.km;
    true)
  else if Sock.peer_gone fd then (
    (* Writing now would succeed into the kernel buffer of a dead
       connection and the frames would vanish: reconnect instead. *)
    Mutex.unlock k.km;
    false)
  else
    let buf = Buffer.create 4096 in
    let n = ref 0 in
    while (not (Queue.is_empty k.kqueue)) && Buffer.length buf < 1 lsl 18 do
      let type_id, payload = Queue.pop k.kqueue in
      Wire.add_frame_header buf ~type_id ~payload_len:(String.length payload);
      Buffer.add_string buf payload;
      incr n
    done;
    k.in_flight <- !n;
    Mutex.unlock k.km;
    match Sock.write_all fd (Buffer.contents buf) with
    | () ->
        with_lock k.km (fun () ->
            k.ksent <- k.ksent + !n;
            k.in_flight <- 0;
            Condition.broadcast k.kc);
        pump k fd
    | exception Unix.Unix_error (e, _, _) ->
        Log.warn "link %s: connection broke (%s); %d frames lost" k.kname (Unix.error_message e) !n;
        with_lock k.km (fun () ->
            k.lost <- k.lost + !n;
            k.in_flight <- 0;
            Condition.broadcast k.kc);
        false

let finish_socket fd =
  (try
     Unix.shutdown fd Unix.SHUTDOWN_SEND;
     Sock.set_timeouts fd 5.0;
     let b = Bytes.create 4096 in
     while Unix.read fd b 0 4096 > 0 do
       ()
     done
   with Unix.Unix_error _ -> ());
  Sock.close_quietly fd

let sock_run k ~backoff_initial ~backoff_max =
  let rec loop delay failures =
    let stop = with_lock k.km (fun () -> k.kclosing && Queue.is_empty k.kqueue) in
    if not stop then
      match k.fd with
      | Some fd ->
          if not (pump k fd) then (
            with_lock k.km (fun () -> k.fd <- None);
            Sock.close_quietly fd;
            loop delay failures)
      | None -> (
          match sock_connect k with
          | Ok (fd, limit) ->
              with_lock k.km (fun () ->
                  k.fd <- Some fd;
                  k.peer_max <- limit;
                  k.connects <- k.connects + 1;
                  Condition.broadcast k.kc);
              Log.debug "link %s: connected" k.kname;
              loop backoff_initial 0
          | Error (Bus_error.Schema_mismatch _ as e) ->
              Log.err "link %s: %s" k.kname (Bus_error.to_string e);
              with_lock k.km (fun () ->
                  k.kfatal <- Some e;
                  Condition.broadcast k.kc)
          | Error e ->
              if not k.kclosing then (
                (if failures = 0 then Log.info else Log.debug)
                  "link %s: connect failed (%s); retry in %.3f s" k.kname (Bus_error.to_string e)
                  delay;
                Sync.sleep_unless delay (fun () -> k.kclosing);
                loop (Float.min (delay *. 2.) backoff_max) (failures + 1)))
  in
  (try loop backoff_initial 0
   with e -> Log.err "link %s: sender thread failed: %s" k.kname (Printexc.to_string e));
  let fd = with_lock k.km (fun () ->
      let fd = k.fd in
      k.fd <- None;
      fd) in
  Option.iter finish_socket fd;
  with_lock k.km (fun () ->
      k.thread_done <- true;
      Condition.broadcast k.kc)

let socket ?(max_payload = Wire.default_max_payload) ?(max_pending = 65536) ?(send_timeout = 5.0)
    ?(connect_timeout = 2.0) ?(backoff_initial = 0.01) ?(backoff_max = 1.0) ~digest address =
  Sock.ignore_sigpipe ();
  let k =
    {
      address;
      kname = Sock.describe address;
      kdigest = digest;
      max_payload;
      kmax_pending = max_pending;
      send_timeout;
      connect_timeout;
      km = Mutex.create ();
      kc = Condition.create ();
      kqueue = Queue.create ();
      in_flight = 0;
      fd = None;
      peer_max = max_payload;
      kfatal = None;
      kclosing = false;
      kclosed = false;
      thread_done = false;
      ksent = 0;
      lost = 0;
      connects = 0;
    }
  in
  ignore (Thread.create (fun () -> sock_run k ~backoff_initial ~backoff_max) ());
  let send type_id payload =
    match check_type_id type_id with
    | Error _ as e -> e
    | Ok () when String.length payload > k.peer_max ->
        Error
          (Bus_error.Transport
             (Printf.sprintf "payload of %d bytes exceeds the %d-byte maximum"
                (String.length payload) k.peer_max))
    | Ok () ->
        with_lock k.km (fun () ->
            let room () =
              Queue.length k.kqueue < k.kmax_pending || k.kfatal <> None || k.kclosing
            in
            let has_room = Sync.wait_until k.km k.kc (Sync.deadline (Some k.send_timeout)) room in
            match k.kfatal with
            | Some e -> Error e
            | None when k.kclosing -> Error (Bus_error.Closed ("link " ^ k.kname ^ " is closed"))
            | None when not has_room ->
                Error
                  (Bus_error.Full
                     (Printf.sprintf "link %s: %d frames queued and no room after %g s" k.kname
                        k.kmax_pending k.send_timeout))
            | None ->
                Queue.push (type_id, payload) k.kqueue;
                Condition.broadcast k.kc;
                Ok ())
  in
  let flush timeout =
    with_lock k.km (fun () ->
        let ready () = (Queue.is_empty k.kqueue && k.in_flight = 0) || k.kfatal <> None || k.thread_done in
        let ok = Sync.wait_until k.km k.kc (Sync.deadline timeout) ready in
        match k.kfatal with
        | Some e -> Error e
        | None -> Ok (ok && Queue.is_empty k.kqueue && k.in_flight = 0))
  in
  let wait_connected timeout =
    with_lock k.km (fun () ->
        let ready () = k.fd <> None || k.kfatal <> None in
        let ok = Sync.wait_until k.km k.kc (Sync.deadline timeout) ready in
        match k.kfatal with Some e -> Error e | None -> Ok ok)
  in
  let close timeout =
    if not k.kclosed then (
      k.kclosed <- true;
      let flushed = match flush (Some timeout) with Ok b -> b | Error _ -> false in
      let left =
        with_lock k.km (fun () ->
            k.kclosing <- true;
            Condition.broadcast k.kc;
            Queue.length k.kqueue + k.in_flight)
      in
      if (not flushed) && left > 0 then
        Log.warn "link %s closed with %d frames undelivered" k.kname left;
      with_lock k.km (fun () ->
          if not (Sync.wait_until k.km k.kc (Sync.deadline (Some (timeout +. 5.))) (fun () -> k.thread_done))
          then Log.warn "link %s: sender thread did not finish" k.kname))
  in
  {
    name = k.kname;
    send;
    flush;
    wait_connected;
    connected = (fun () -> k.fd <> None);
    pending = (fun () -> Queue.length k.kqueue + k.in_flight);
    stats = (fun () -> [ ("sent", k.ksent); ("lost", k.lost); ("connects", k.connects) ]);
    close;
  }

(* -- broadcast publication -------------------------------------------------- *)

let shm_publication ?(capacity = 1 lsl 20) ?(spare_readers = 1) ?(untether = 10.0)
    ?(send_timeout = 5.0) ?(unlink_on_close = false) ~digest ~subscribers channel =
  let readers = List.length subscribers + spare_readers in
  (* whole milliseconds, as the channel takes it (1.234 s * 1e9 is not exact) *)
  let untether_ns = Float.to_int (Float.round (untether *. 1e3)) * 1_000_000 in
  match
    Writer.create_or_attach ~capacity ~schema_digest:digest ~readers ~untether_ns channel
  with
  | Error e -> Error (Bus_error.of_channel e)
  | Ok w -> (
      (* A durable cursor at the tail for every subscriber (one that
         exists, held or not, is left as it is). *)
      let rec register = function
        | [] -> Ok ()
        | cursor :: rest -> (
            match Channel.register_cursor channel cursor with
            | Ok () -> register rest
            | Error e -> Error (Bus_error.of_channel e))
      in
      match register subscribers with
      | Error _ as e ->
          Writer.close w;
          e
      | Ok () ->
          let name = "shm-pub:" ^ channel in
          (* A subscriber whose cursor was attached after this has come. *)
          let registered_ns = Int64.to_int (Int64.of_float (Unix.gettimeofday () *. 1e9)) in
          let all_attached = ref (subscribers = []) in
          let attached () =
            (if not !all_attached then
               match Channel.cursors channel with
               | Error _ -> ()
               | Ok table ->
                   all_attached :=
                     List.for_all
                       (fun sub ->
                         List.exists
                           (fun (c : Cursor.info) ->
                             c.name = sub && (c.alive || c.attached_ns > registered_ns))
                           table)
                       subscribers);
            !all_attached
          in
          (* Frames are in the ring once [send] returns, at every subscriber's
             cursor; [flush] waits until every subscriber has attached once,
             the broadcast twin of a mailbox link reaching its peer's channel. *)
          let flush timeout =
            let deadline = Option.map (fun t -> Unix.gettimeofday () +. t) timeout in
            let rec loop () =
              if attached () then Ok true
              else
                match deadline with
                | Some d when Unix.gettimeofday () >= d -> Ok false
                | _ ->
                    Thread.delay 0.002;
                    loop ()
            in
            loop ()
          in
          let timeout_ns = Float.to_int (send_timeout *. 1e9) in
          let writer = ref (Some w) and sent = ref 0 in
          let rec write w type_id payload =
            match Writer.write ~timeout_ns w ~type_id payload with
            | Ok () ->
                incr sent;
                Ok ()
            | Error { Error.code = Error.Interrupted; _ } -> write w type_id payload
            | Error e -> Error (Bus_error.of_channel e)
          in
          let send type_id payload =
            match check_type_id type_id with
            | Error _ as e -> e
            | Ok () -> (
                match !writer with
                | Some w -> write w type_id payload
                | None -> Error (Bus_error.Closed ("link " ^ name ^ " is closed")))
          in
          let close _timeout =
            match !writer with
            | None -> ()
            | Some w ->
                writer := None;
                Writer.close w;
                if unlink_on_close then Channel.unlink_if_exists channel
          in
          Ok
            {
              name;
              send;
              flush;
              wait_connected = (fun _ -> Ok (!writer <> None));
              connected = (fun () -> !writer <> None);
              pending = (fun () -> 0);
              stats =
                (fun () ->
                  [ ("sent", !sent); ("lost", 0); ("connects", if !writer <> None then 1 else 0) ]);
              close;
            })
