type overflow = Block | Drop_oldest | Drop_newest | Raise

type 'a t = {
  q : 'a Queue.t;
  capacity : int;
  overflow : overflow;
  m : Mutex.t;
  not_empty : Condition.t;
  not_full : Condition.t;
  mutable closed : bool;
  mutable dropped : int;
  mutable hooks : (unit -> unit) list;
}

let create ?(capacity = 1024) ?(overflow = Block) () =
  if capacity < 1 then
    invalid_arg (Printf.sprintf "Subscriber.create: capacity must be at least 1, not %d" capacity);
  {
    q = Queue.create ();
    capacity;
    overflow;
    m = Mutex.create ();
    not_empty = Condition.create ();
    not_full = Condition.create ();
    closed = false;
    dropped = 0;
    hooks = [];
  }

let push t x =
  Queue.push x t.q;
  Condition.signal t.not_empty

let offer ?(from_transport = false) t x =
  Mutex.lock t.m;
  let r =
    if t.closed then Ok ()
    else if Queue.length t.q < t.capacity then (
      push t x;
      Ok ())
    else
      match t.overflow with
      | Block ->
          while Queue.length t.q >= t.capacity && not t.closed do
            Condition.wait t.not_full t.m
          done;
          if t.closed then Error (Bus_error.Closed "subscriber closed while a publisher waited for room")
          else (
            push t x;
            Ok ())
      | Drop_oldest ->
          ignore (Queue.pop t.q);
          t.dropped <- t.dropped + 1;
          push t x;
          Ok ()
      | Drop_newest ->
          t.dropped <- t.dropped + 1;
          Ok ()
      | Raise ->
          if from_transport then (
            t.dropped <- t.dropped + 1;
            Ok ())
          else
            Error
              (Bus_error.Overflow
                 (Printf.sprintf "subscriber queue full (%d messages) under Raise" t.capacity))
  in
  Mutex.unlock t.m;
  r

let take t =
  let x = Queue.pop t.q in
  Condition.signal t.not_full;
  x

let get ?timeout t =
  Mutex.lock t.m;
  let ready () = (not (Queue.is_empty t.q)) || t.closed in
  let _ = Sync.wait_until t.m t.not_empty (Sync.deadline timeout) ready in
  let r =
    if not (Queue.is_empty t.q) then Ok (take t)
    else if t.closed then Error (Bus_error.Closed "subscriber is closed")
    else Error (Bus_error.Timeout "no message before the timeout")
  in
  Mutex.unlock t.m;
  r

let try_get t =
  Mutex.lock t.m;
  let r = if Queue.is_empty t.q then None else Some (take t) in
  Mutex.unlock t.m;
  r

let drain t =
  Mutex.lock t.m;
  let items = List.of_seq (Queue.to_seq t.q) in
  Queue.clear t.q;
  Condition.broadcast t.not_full;
  Mutex.unlock t.m;
  items

let length t = Queue.length t.q
let capacity t = t.capacity
let policy t = t.overflow
let dropped t = t.dropped
let is_closed t = t.closed

let close t =
  Mutex.lock t.m;
  let hooks = if t.closed then [] else t.hooks in
  t.closed <- true;
  t.hooks <- [];
  Condition.broadcast t.not_empty;
  Condition.broadcast t.not_full;
  Mutex.unlock t.m;
  List.iter (fun f -> f ()) hooks

let on_close t f =
  Mutex.lock t.m;
  let now = t.closed in
  if not now then t.hooks <- f :: t.hooks;
  Mutex.unlock t.m;
  if now then f ()
