module IntMap = Map.Make (Int)

type sink_fn = Sink : 'a Msg.t * ('a -> bool -> (unit, Bus_error.t) result) -> sink_fn
type sink = { sid : int; fn : sink_fn }
type route = { mutable sinks : sink list; mutable links : Link.t list }

type t = {
  name : string;
  digest : string;
  on_error : (string -> exn -> unit) option;
  lock : Mutex.t;
  mutable routes : route IntMap.t;
  mutable all_links : Link.t list;
  mutable inbound : (Inbound.t * Throttle.t) list;  (** with its decode-error log *)
  decode_log : Throttle.t;  (** of {!deliver_frame} called directly *)
  mutable started : bool;
  mutable closed : bool;
  mutable next_id : int;
  mutable queues_to_close : (int * (unit -> unit)) list;  (** by subscription id *)
  received : int ref;
  unrouted : int ref;
  decode_errors : int ref;
  handler_errors : int ref;
}

let with_lock = Sync.with_lock

let create ?(name = "bus") ?on_error ~digest () =
  if String.length digest <> Wire.digest_size then
    invalid_arg (Printf.sprintf "Bus.create: digest of %d bytes, not 32" (String.length digest));
  {
    name;
    digest;
    on_error;
    lock = Mutex.create ();
    routes = IntMap.empty;
    all_links = [];
    inbound = [];
    decode_log = Throttle.create ~level:Log.Error ~name:("bus " ^ name) "undecodable frames";
    started = false;
    closed = false;
    next_id = 0;
    queues_to_close = [];
    received = ref 0;
    unrouted = ref 0;
    decode_errors = ref 0;
    handler_errors = ref 0;
  }

let name t = t.name
let digest t = t.digest
let is_closed t = t.closed

(* The route of a type id, made on first use (under the lock). *)
let route_for t type_id =
  match IntMap.find_opt type_id t.routes with
  | Some r -> r
  | None ->
      with_lock t.lock (fun () ->
          match IntMap.find_opt type_id t.routes with
          | Some r -> r
          | None ->
              let r = { sinks = []; links = [] } in
              t.routes <- IntMap.add type_id r t.routes;
              r)

let report t context exn =
  incr t.handler_errors;
  match t.on_error with
  | Some f -> ( try f context exn with e -> Log.err "bus %s: on_error hook failed: %s" t.name (Printexc.to_string e))
  | None -> Log.err "bus %s: %s: %s" t.name context (Printexc.to_string exn)

(* -- publishing ---------------------------------------------------------------- *)

type 'a publisher = { bus : t; msg : 'a Msg.t; route : route }

let publisher bus msg = { bus; msg; route = route_for bus (Msg.type_id msg) }

let publish (type a) { bus; msg; route } (x : a) =
  if bus.closed then Error (Bus_error.Closed (Printf.sprintf "bus %S is closed" bus.name))
  else
    let encoded = lazy (Msg.encode msg x) in
    let first = ref None in
    let note = function Ok () -> () | Error e -> if !first = None then first := Some e in
    List.iter
      (fun { fn = Sink (m, f); _ } ->
        match Msg.same msg m with
        | Some Msg.Refl -> note (f x false)
        | None -> (
            (* Another descriptor of this type: hand it over through the
               encoding (see Msg). *)
            match Lazy.force encoded with
            | Error _ as e -> note e
            | Ok p -> ( match Msg.decode m p with Ok y -> note (f y false) | Error _ as e -> note e)))
      route.sinks;
    (match route.links with
    | [] -> ()
    | links -> (
        match Lazy.force encoded with
        | Error _ as e -> note e
        | Ok payload ->
            let type_id = Msg.type_id msg in
            List.iter (fun l -> note (Link.send l ~type_id payload)) links));
    match !first with None -> Ok () | Some e -> Error e

let publish_exn p x = Bus_error.get_exn (publish p x)
let send bus msg x = publish (publisher bus msg) x

(* -- subscribing ------------------------------------------------------------------ *)

type subscription = { sbus : t; type_id : int; id : int; mutable active : bool }

let add_sink t msg f =
  let type_id = Msg.type_id msg in
  let route = route_for t type_id in
  let id =
    with_lock t.lock (fun () ->
        t.next_id <- t.next_id + 1;
        let sink = { sid = t.next_id; fn = Sink (msg, f) } in
        if not t.closed then route.sinks <- route.sinks @ [ sink ];
        t.next_id)
  in
  { sbus = t; type_id; id; active = true }

let unsubscribe s =
  if s.active then (
    s.active <- false;
    let t = s.sbus in
    with_lock t.lock (fun () ->
        match IntMap.find_opt s.type_id t.routes with
        | Some r -> r.sinks <- List.filter (fun k -> k.sid <> s.id) r.sinks
        | None -> ());
        t.queues_to_close <- List.filter (fun (id, _) -> id <> s.id) t.queues_to_close)

let subscribe t msg f =
  let name = Msg.name msg in
  add_sink t msg (fun x _ ->
      (try f x with e -> report t (Printf.sprintf "handler failed on %s" name) e);
      Ok ())

let feed t msg q wrap =
  let s = add_sink t msg (fun x from_transport -> Subscriber.offer ~from_transport q (wrap x)) in
  with_lock t.lock (fun () ->
      t.queues_to_close <- (s.id, fun () -> Subscriber.close q) :: t.queues_to_close);
  Subscriber.on_close q (fun () -> unsubscribe s);
  if t.closed then Subscriber.close q;
  s

let subscriber ?capacity ?overflow t msg =
  let q = Subscriber.create ?capacity ?overflow () in
  ignore (feed t msg q Fun.id);
  q

(* -- bridges ----------------------------------------------------------------------- *)

let add_link t link type_ids =
  let routes = List.map (route_for t) type_ids in
  with_lock t.lock (fun () ->
      if not (List.memq link t.all_links) then t.all_links <- t.all_links @ [ link ];
      List.iter (fun r -> if not (List.memq link r.links) then r.links <- r.links @ [ link ]) routes)

let links_of t type_id = match IntMap.find_opt type_id t.routes with Some r -> r.links | None -> []

(* [log]: the endpoint's limiter, so a peer sending garbage costs a few
   lines a second, not one per frame. *)
let deliver_via t log type_id payload =
  incr t.received;
  Throttle.tick log;
  match IntMap.find_opt type_id t.routes with
  | None | Some { sinks = []; _ } -> incr t.unrouted
  | Some { sinks; _ } ->
      (* Decode once per descriptor (usually one for all sinks). *)
      let cache = ref [] in
      let rec find : type a. a Msg.t -> Msg.packed list -> a option =
       fun m -> function
        | [] -> None
        | Msg.Pack (m', v) :: rest -> (
            match Msg.same m' m with Some Msg.Refl -> Some v | None -> find m rest)
      in
      let failed = ref false in
      List.iter
        (fun { fn = Sink (m, f); _ } ->
          if not !failed then
            let value =
              match find m !cache with
              | Some v -> Some v
              | None -> (
                  match Msg.decode m payload with
                  | Ok v ->
                      cache := Msg.Pack (m, v) :: !cache;
                      Some v
                  | Error e ->
                      failed := true;
                      incr t.decode_errors;
                      Throttle.msg log "bus %s: frame of type %d (%d bytes) did not decode: %s" t.name
                        type_id (String.length payload) (Bus_error.to_string e);
                      None)
            in
            match value with Some v -> ignore (f v true) | None -> ())
        sinks

let deliver_frame t type_id payload = deliver_via t t.decode_log type_id payload

let add_inbound t ep =
  let log =
    Throttle.create ~level:Log.Error
      ~name:(Printf.sprintf "bus %s: %s" t.name (Inbound.name ep))
      "undecodable frames"
  in
  let start_now =
    with_lock t.lock (fun () ->
        if t.closed then invalid_arg "Bus.add_inbound: the bus is closed";
        t.inbound <- t.inbound @ [ (ep, log) ];
        t.started)
  in
  if start_now then Inbound.start ep (deliver_via t log)

let start t =
  let eps =
    with_lock t.lock (fun () ->
        if t.started || t.closed then []
        else (
          t.started <- true;
          t.inbound))
  in
  List.iter (fun (ep, log) -> Inbound.start ep (deliver_via t log)) eps

let stats t =
  [
    ("received", !(t.received));
    ("unrouted", !(t.unrouted));
    ("decode_errors", !(t.decode_errors));
    ("handler_errors", !(t.handler_errors));
  ]

(* -- lifetime ---------------------------------------------------------------------------- *)

let flush ?timeout t =
  List.fold_left
    (fun ok l -> match Link.flush ?timeout l with Ok b -> b && ok | Error _ -> false)
    true t.all_links

let close_inbound t =
  let eps =
    with_lock t.lock (fun () ->
        let e = t.inbound in
        t.inbound <- [];
        e)
  in
  List.iter
    (fun (ep, log) ->
      (try Inbound.close ep
       with e -> Log.warn "bus %s: closing %s failed: %s" t.name (Inbound.name ep) (Printexc.to_string e));
      Throttle.flush log)
    eps;
  Throttle.flush t.decode_log

let close ?(timeout = 5.0) t =
  let first =
    with_lock t.lock (fun () ->
        let f = not t.closed in
        t.closed <- true;
        f)
  in
  if first then (
    close_inbound t;
    List.iter
      (fun l ->
        try Link.close ~timeout l
        with e -> Log.warn "bus %s: closing %s failed: %s" t.name (Link.name l) (Printexc.to_string e))
      t.all_links;
    List.iter (fun (_, f) -> f ()) (with_lock t.lock (fun () -> t.queues_to_close)))
