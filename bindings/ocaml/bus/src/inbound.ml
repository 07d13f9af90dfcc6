open Mycelium_shm

type t = {
  name : string;
  address : Sock.address option;
  start : (int -> string -> unit) -> unit;
  stats : unit -> (string * int) list;
  errors : unit -> Bus_error.t list;
  close : unit -> unit;
}

let name t = t.name
let address t = t.address
let start t deliver = t.start deliver
let stats t = t.stats ()
let errors t = t.errors ()
let close t = t.close ()

let with_lock = Sync.with_lock

(* -- shared memory ---------------------------------------------------------- *)

let shm ?(capacity = 1 lsl 20) ?(unlink_on_close = false) ~digest channel =
  match Reader.create_or_attach ~capacity ~schema_digest:digest channel with
  | Error e -> Error (Bus_error.of_channel e)
  | Ok reader ->
      let name = "shm:" ^ channel in
      let m = Mutex.create () and c = Condition.create () in
      let stop = ref false and started = ref false and running = ref false and closed = ref false in
      let frames = ref 0 in
      let rec read_loop deliver =
        if not !stop then
          match Reader.read_batch ~timeout_ns:50_000_000 ~max_frames:64 reader with
          | Ok batch ->
              List.iter
                (fun { Reader.type_id; payload } ->
                  incr frames;
                  deliver type_id payload)
                batch;
              read_loop deliver
          | Error { Error.code = Error.Empty | Error.Interrupted; _ } -> read_loop deliver
          | Error e ->
              if not !stop then Log.err "%s: reading failed: %s" name (Error.to_string e)
      in
      let start deliver =
        if !started then invalid_arg (name ^ ": already started");
        started := true;
        running := true;
        ignore
          (Thread.create
             (fun () ->
               (try read_loop deliver
                with e -> Log.err "%s: reader thread failed: %s" name (Printexc.to_string e));
               with_lock m (fun () ->
                   running := false;
                   Condition.broadcast c))
             ())
      in
      let close () =
        if not !closed then (
          closed := true;
          stop := true;
          let ended =
            with_lock m (fun () -> Sync.wait_until m c (Sync.deadline (Some 2.0)) (fun () -> not !running))
          in
          if ended then Reader.close reader
          else Log.warn "%s: reader thread still busy; channel left attached" name;
          if unlink_on_close then Channel.unlink_if_exists channel)
      in
      Ok
        {
          name;
          address = None;
          start;
          stats = (fun () -> [ ("frames", !frames) ]);
          errors = (fun () -> []);
          close;
        }

(* -- broadcast subscription ---------------------------------------------------- *)

let busy_grace = 1.0

let shm_subscription ?(policy = Cursor.Tethered) ?(backoff_initial = 0.005) ?(backoff_max = 0.02)
    ?(batch = 256) ~digest ~cursor channel =
  let name = Printf.sprintf "shm-sub:%s[%s]" channel cursor in
  (* One attach attempt: [Ok None] while the channel does not exist, or while
     another live reader has held the cursor for less than [busy_grace]
     (something that attached it for a moment; longer, it is another reader
     of the same name). *)
  let busy_since = ref None in
  let try_attach () =
    match Reader.attach ~schema_digest:digest ~cursor ~policy channel with
    | Ok r -> Ok (Some r)
    | Error { Error.code = Error.Not_found; _ } -> Ok None
    | Error ({ Error.code = Error.Reader_busy; _ } as e) ->
        let now = Unix.gettimeofday () in
        let since = Option.value !busy_since ~default:now in
        busy_since := Some since;
        if now -. since < busy_grace then Ok None else Error (Bus_error.of_channel e)
    | Error e -> Error (Bus_error.of_channel e)
  in
  match try_attach () with
  | Error _ as e -> e
  | Ok first ->
      let m = Mutex.create () and c = Condition.create () in
      let reader = ref first in
      let stop = ref false and started = ref false and running = ref false and closed = ref false in
      let frames = ref 0 and lost = ref 0 in
      let rec attach delay =
        if !stop then None
        else
          match try_attach () with
          | Ok (Some r) ->
              Log.debug "%s: attached" name;
              with_lock m (fun () -> reader := Some r);
              Some r
          | Ok None ->
              Sync.sleep_unless delay (fun () -> !stop);
              attach (Float.min (delay *. 2.) backoff_max)
          | Error e ->
              Log.err "%s: cannot attach: %s" name (Bus_error.to_string e);
              None
      in
      let rec read_loop r deliver =
        if not !stop then
          match Reader.read_batch ~timeout_ns:50_000_000 ~max_frames:batch r with
          | Ok got ->
              let now_lost = Reader.lost r in
              if now_lost <> !lost then (
                Log.warn "%s: %d frames lost (the publisher untethered this subscriber)" name
                  (now_lost - !lost);
                lost := now_lost);
              List.iter
                (fun { Reader.type_id; payload } ->
                  incr frames;
                  deliver type_id payload)
                got;
              read_loop r deliver
          | Error { Error.code = Error.Empty | Error.Interrupted; _ } -> read_loop r deliver
          | Error e -> if not !stop then Log.err "%s: reading failed: %s" name (Error.to_string e)
      in
      let start deliver =
        if !started then invalid_arg (name ^ ": already started");
        started := true;
        running := true;
        ignore
          (Thread.create
             (fun () ->
               (try
                  let r = match !reader with Some r -> Some r | None -> attach backoff_initial in
                  Option.iter (fun r -> read_loop r deliver) r
                with e -> Log.err "%s: reader thread failed: %s" name (Printexc.to_string e));
               with_lock m (fun () ->
                   running := false;
                   Condition.broadcast c))
             ())
      in
      let close () =
        if not !closed then (
          closed := true;
          stop := true;
          let ended =
            with_lock m (fun () -> Sync.wait_until m c (Sync.deadline (Some 2.0)) (fun () -> not !running))
          in
          (* The durable cursor stays, at the position reached. *)
          if ended then Option.iter Reader.close !reader
          else Log.warn "%s: reader thread still busy; channel left attached" name)
      in
      Ok
        {
          name;
          address = None;
          start;
          stats =
            (fun () ->
              [ ("frames", !frames); ("lost", !lost); ("attached", if !reader <> None then 1 else 0) ]);
          errors = (fun () -> []);
          close;
        }

(* -- sockets ------------------------------------------------------------------ *)

(* Connections are served by a pool of worker threads: a worker that
   finishes a connection waits for the next one instead of ending, and a
   new worker starts only when no idle one is left (so at most
   [max_connections] workers, parked in [Condition.wait] until {!close}).
   Not a thread per connection: OCaml 4.13 never frees the alternate signal
   stack of an ended thread (about 4 KiB of C heap), so a peer churning
   connections made memory grow without bound. *)
type sock = {
  sname : string;
  digest : string;
  max_payload : int;
  max_connections : int;
  handshake_timeout : float;
  frame_timeout : float;
  idle_timeout : float option;
  listener : Unix.file_descr;
  bound : Sock.address;
  m : Mutex.t;
  c : Condition.t;  (** [threads] changed *)
  work : Condition.t;  (** [pending] got a connection, or [stop] *)
  deliver_lock : Mutex.t;
  mutable deliver : int -> string -> unit;
  conns : (Unix.file_descr, unit) Hashtbl.t;  (** admitted, not yet closed *)
  pending : Unix.file_descr Queue.t;  (** admitted, no worker yet *)
  mutable threads : int;  (** accept thread + workers running *)
  mutable workers : int;
  mutable idle : int;  (** workers waiting for a connection *)
  mutable stop : bool;
  mutable errs : Bus_error.t list;
  mutable connections : int;
  mutable sframes : int;
  mutable refused : int;
  mutable timed_out : int;
  mutable oversized : int;
  mutable refused_unlogged : int;  (** refused since the last line about it *)
  mutable refused_logged_at : float;
  errlog : Throttle.t;  (** connection errors *)
}

let report s e =
  let log =
    with_lock s.m (fun () ->
        s.errs <- e :: List.filteri (fun i _ -> i < 31) s.errs;
        not s.stop)
  in
  if log then Throttle.msg s.errlog "%s: connection ended: %s" s.sname (Bus_error.to_string e)

(* Refused connections: at most one line a second, with the count since the
   previous line; [force] (close) writes what is left. *)
let log_refused ?(force = false) s =
  let line =
    with_lock s.m (fun () ->
        let now = Sync.now () in
        if s.refused_unlogged > 0 && (force || now -. s.refused_logged_at >= 1.0) then (
          let n = s.refused_unlogged in
          s.refused_unlogged <- 0;
          s.refused_logged_at <- now;
          Some n)
        else None)
  in
  Option.iter
    (fun n ->
      Log.warn "%s: %d connection%s refused (max_connections %d open) since the last such line"
        s.sname n (if n = 1 then "" else "s") s.max_connections)
    line

exception Drop of Bus_error.t

let chunk = 65536

(* One connection: hello, then frames until EOF, an error or [close]. *)
let serve s fd =
  let transport fmt = Printf.ksprintf (fun m -> raise (Drop (Bus_error.Transport m))) fmt in
  let hello = Bytes.create Wire.hello_size in
  Sock.set_timeouts fd s.handshake_timeout;
  Sock.write_all fd (Wire.hello ~max_payload:s.max_payload ~digest:s.digest);
  (* The whole hello within handshake_timeout of the accept, however the
     peer dribbles it. *)
  let deadline = Sync.now () +. s.handshake_timeout in
  let rec read_hello got =
    if got = Wire.hello_size then `Ok
    else if Sync.now () > deadline then `Late
    else
      match Unix.read fd hello got (Wire.hello_size - got) with
      | 0 -> `Eof got
      | k -> read_hello (got + k)
      | exception Unix.Unix_error (Unix.EINTR, _, _) -> read_hello got
      | exception Unix.Unix_error ((Unix.EAGAIN | Unix.EWOULDBLOCK), _, _) -> `Late
  in
  let limit =
    match read_hello 0 with
    | `Late ->
        with_lock s.m (fun () -> s.timed_out <- s.timed_out + 1);
        transport "no handshake within %g s; connection dropped" s.handshake_timeout
    | `Eof 0 -> transport "peer closed the connection during the handshake"
    | `Eof n -> transport "connection closed inside a record (%d of 48 bytes)" n
    | `Ok -> (
        match
          Wire.check_hello ~digest:s.digest ~max_payload:s.max_payload (Bytes.to_string hello)
        with
        | Ok limit -> limit
        | Error e -> raise (Drop e))
  in
  with_lock s.m (fun () -> s.connections <- s.connections + 1);
  (* Reads wake at least every frame_timeout (and idle_timeout) to check
     the deadlines. *)
  Sock.set_timeouts fd
    (match s.idle_timeout with Some i -> Float.min i s.frame_timeout | None -> s.frame_timeout);
  let buf = Bytes.create chunk in
  let pos = ref 0 and len = ref 0 in
  let started = ref None in
  let last_read = ref (Sync.now ()) in
  let check_deadline () =
    match (!started, s.idle_timeout) with
    | Some t0, _ when Sync.now () -. t0 > s.frame_timeout ->
        with_lock s.m (fun () -> s.timed_out <- s.timed_out + 1);
        transport "frame not completed within %g s; connection dropped" s.frame_timeout
    | None, Some idle when Sync.now () -. !last_read > idle ->
        with_lock s.m (fun () -> s.timed_out <- s.timed_out + 1);
        transport "idle for %g s; connection dropped" idle
    | _ -> ()
  in
  let rec read_into b off n =
    match Unix.read fd b off n with
    | k ->
        if k > 0 && s.idle_timeout <> None then last_read := Sync.now ();
        k
    | exception Unix.Unix_error (Unix.EINTR, _, _) -> read_into b off n
    | exception Unix.Unix_error ((Unix.EAGAIN | Unix.EWOULDBLOCK), _, _) ->
        check_deadline ();
        read_into b off n
  in
  let deliver type_id payload =
    with_lock s.m (fun () -> s.sframes <- s.sframes + 1);
    with_lock s.deliver_lock (fun () -> s.deliver type_id payload)
  in
  let eof_error avail =
    if avail < Wire.header_size then
      transport "connection closed inside a record (%d of 8 bytes)" avail
    else if avail = Wire.header_size then
      transport "connection closed between a frame header and payload"
    else
      let flen = Int32.to_int (Bytes.get_int32_le buf !pos) land 0xFFFF_FFFF in
      transport "connection closed inside a record (%d of %d bytes)" (avail - 8) (flen - 8)
  in
  let rec loop () =
    let avail = !len - !pos in
    if avail >= Wire.header_size then (
      match Wire.check_header ~limit buf !pos with
      | Error e ->
          let flen = Int32.to_int (Bytes.get_int32_le buf !pos) land 0xFFFF_FFFF in
          if flen - Wire.header_size > limit then with_lock s.m (fun () -> s.oversized <- s.oversized + 1);
          raise (Drop e)
      | Ok (plen, type_id) ->
          let flen = Wire.header_size + plen in
          if avail >= flen then (
            let payload = Bytes.sub_string buf (!pos + Wire.header_size) plen in
            pos := !pos + flen;
            started := None;
            deliver type_id payload;
            loop ())
          else if flen > chunk then (
            (* A frame larger than the buffer: read its payload in place. *)
            if !started = None then started := Some (Sync.now ());
            let payload = Bytes.create plen in
            let have = avail - Wire.header_size in
            Bytes.blit buf (!pos + Wire.header_size) payload 0 have;
            pos := 0;
            len := 0;
            let rec rest got =
              if got < plen then (
                let k = read_into payload got (plen - got) in
                if k = 0 then
                  transport "connection closed inside a record (%d of %d bytes)" got plen;
                check_deadline ();
                rest (got + k))
            in
            rest have;
            started := None;
            deliver type_id (Bytes.unsafe_to_string payload);
            loop ())
          else more avail)
    else more avail
  and more avail =
    if avail > 0 && !started = None then started := Some (Sync.now ());
    if !pos > 0 then (
      Bytes.blit buf !pos buf 0 avail;
      pos := 0;
      len := avail);
    let k = read_into buf !len (chunk - !len) in
    if k = 0 then (if avail > 0 then eof_error avail)
    else (
      len := !len + k;
      check_deadline ();
      loop ())
  in
  loop ()


(* The next connection for a worker ([s.m] held): [None] once stopping. *)
let rec next_conn s =
  if s.stop then None
  else
    match Queue.take_opt s.pending with
    | Some fd -> Some fd
    | None ->
        s.idle <- s.idle + 1;
        Condition.wait s.work s.m;
        s.idle <- s.idle - 1;
        next_conn s

let serve_one s fd =
  try serve s fd with
  | Drop e -> report s e
  | Unix.Unix_error (e, fn, _) ->
      if not s.stop then report s (Bus_error.Transport (fn ^ ": " ^ Unix.error_message e))
  | e -> report s (Bus_error.Transport ("connection handler failed: " ^ Printexc.to_string e))

let worker s =
  let rec go = function
    | None -> ()
    | Some fd ->
        serve_one s fd;
        (* Forgotten and closed under the lock: [close] shuts down what
           [conns] holds, never a number reused meanwhile. *)
        go
          (with_lock s.m (fun () ->
               Hashtbl.remove s.conns fd;
               Sock.close_quietly fd;
               next_conn s))
  in
  (try go (with_lock s.m (fun () -> next_conn s))
   with e -> Log.err "%s: connection worker failed: %s" s.sname (Printexc.to_string e));
  with_lock s.m (fun () ->
      s.workers <- s.workers - 1;
      s.threads <- s.threads - 1;
      Condition.broadcast s.c)

let accept_loop s =
  let rec loop delay =
    if not s.stop then
      match Unix.accept ~cloexec:true s.listener with
      | fd, _ ->
          (match s.bound with
          | Sock.Tcp _ -> ( try Unix.setsockopt fd Unix.TCP_NODELAY true with Unix.Unix_error _ -> ())
          | Sock.Unix_socket _ -> ());
          let admitted, spawn =
            with_lock s.m (fun () ->
                if s.stop || Hashtbl.length s.conns >= s.max_connections then (
                  s.refused <- s.refused + 1;
                  s.refused_unlogged <- s.refused_unlogged + 1;
                  Sock.close_quietly fd;
                  (false, false))
                else (
                  Hashtbl.replace s.conns fd ();
                  Queue.push fd s.pending;
                  (* Every idle worker takes one; beyond them, a new one
                     (never more than max_connections: a worker is idle,
                     serving a connection in [conns], or about to take one). *)
                  if Queue.length s.pending > s.idle && s.workers < s.max_connections then (
                    s.workers <- s.workers + 1;
                    s.threads <- s.threads + 1;
                    (true, true))
                  else (
                    Condition.signal s.work;
                    (true, false))))
          in
          if spawn then (
            match Thread.create worker s with
            | _ -> ()
            | exception e ->
                with_lock s.m (fun () ->
                    s.workers <- s.workers - 1;
                    s.threads <- s.threads - 1);
                Log.err "%s: cannot start a connection worker: %s" s.sname (Printexc.to_string e));
          log_refused s;
          if admitted then (
            Throttle.tick s.errlog;
            loop 0.)
          else loop 0.
      | exception Unix.Unix_error ((Unix.EINTR | Unix.ECONNABORTED | Unix.EPERM), _, _) ->
          loop delay
      | exception Unix.Unix_error (e, _, _) ->
          if not s.stop then (
            let delay = Float.min 1.0 (Float.max 0.01 (delay *. 2.)) in
            Log.warn "%s: accept failed (%s); retry in %.2f s" s.sname (Unix.error_message e) delay;
            Sync.sleep_unless delay (fun () -> s.stop);
            loop delay)
  in
  loop 0.;
  with_lock s.m (fun () ->
      s.threads <- s.threads - 1;
      Condition.broadcast s.c)

let socket ?(max_payload = Wire.default_max_payload) ?(max_connections = 64)
    ?(handshake_timeout = 5.0) ?(frame_timeout = 30.0) ?idle_timeout ~digest address =
  Sock.ignore_sigpipe ();
  (match idle_timeout with
  | Some t when not (t > 0.) -> invalid_arg (Printf.sprintf "Inbound.socket: idle_timeout %g" t)
  | _ -> ());
  if max_connections < 1 then invalid_arg "Inbound.socket: max_connections below 1";
  match Sock.listen address with
  | Error _ as e -> e
  | Ok (listener, bound) ->
      let sname = Sock.describe bound in
      let s =
        {
          sname;
          digest;
          max_payload;
          max_connections;
          handshake_timeout;
          frame_timeout;
          idle_timeout;
          listener;
          bound;
          m = Mutex.create ();
          c = Condition.create ();
          work = Condition.create ();
          deliver_lock = Mutex.create ();
          deliver = (fun _ _ -> ());
          conns = Hashtbl.create 16;
          pending = Queue.create ();
          threads = 0;
          workers = 0;
          idle = 0;
          stop = false;
          errs = [];
          connections = 0;
          sframes = 0;
          refused = 0;
          timed_out = 0;
          oversized = 0;
          refused_unlogged = 0;
          refused_logged_at = neg_infinity;
          errlog = Throttle.create ~name:sname "connection errors";
        }
      in
      let started = ref false and closed = ref false in
      let start deliver =
        if !started then invalid_arg (s.sname ^ ": already started");
        started := true;
        s.deliver <- deliver;
        with_lock s.m (fun () -> s.threads <- s.threads + 1);
        ignore (Thread.create accept_loop s)
      in
      let close () =
        if not !closed then (
          closed := true;
          (* Wake the accept thread (shutdown of a listening socket ends a
             blocked accept on Linux), every connection's read and every
             idle worker.  Under the lock: a descriptor in [conns] is still
             open. *)
          with_lock s.m (fun () ->
              s.stop <- true;
              Hashtbl.iter
                (fun fd () -> try Unix.shutdown fd Unix.SHUTDOWN_ALL with Unix.Unix_error _ -> ())
                s.conns;
              Condition.broadcast s.work);
          (try Unix.shutdown s.listener Unix.SHUTDOWN_ALL with Unix.Unix_error _ -> ());
          let ended =
            with_lock s.m (fun () ->
                Sync.wait_until s.m s.c (Sync.deadline (Some 2.0)) (fun () -> s.threads = 0))
          in
          (* Admitted connections no worker took. *)
          with_lock s.m (fun () ->
              Queue.iter
                (fun fd ->
                  Hashtbl.remove s.conns fd;
                  Sock.close_quietly fd)
                s.pending;
              Queue.clear s.pending);
          if not ended then Log.warn "%s: %d threads still busy at close" s.sname s.threads;
          Sock.close_quietly s.listener;
          log_refused ~force:true s;
          Throttle.flush s.errlog;
          match s.bound with
          | Sock.Unix_socket p -> ( try Unix.unlink p with Unix.Unix_error _ -> ())
          | Sock.Tcp _ -> ())
      in
      let stats () =
        with_lock s.m (fun () ->
            [
              ("frames", s.sframes);
              ("connections", s.connections);
              ("open", Hashtbl.length s.conns);
              ("refused", s.refused);
              ("timed_out", s.timed_out);
              ("oversized", s.oversized);
              ("workers", s.workers);
              ("idle_workers", s.idle);
            ])
      in
      Ok
        {
          name = s.sname;
          address = Some bound;
          start;
          stats;
          errors = (fun () -> with_lock s.m (fun () -> s.errs));
          close;
        }
