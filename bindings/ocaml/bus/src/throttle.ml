type t = {
  name : string;
  what : string;
  level : Log.level;
  burst : int;
  interval : float;
  m : Mutex.t;
  mutable window : float;  (** start of the current window *)
  mutable count : int;  (** events in the current window *)
  mutable pending : int;  (** counted, not yet summarized *)
  mutable total : int;  (** counted, never logged in full *)
}

let create ?(burst = 5) ?(interval = 1.0) ?(level = Log.Warning) ~name what =
  {
    name;
    what;
    level;
    burst = max 1 burst;
    interval;
    m = Mutex.create ();
    window = neg_infinity;
    count = 0;
    pending = 0;
    total = 0;
  }

let with_lock = Sync.with_lock

(* The pending summary, taken (under the lock). *)
let take_summary t =
  if t.pending = 0 then None
  else
    let n = t.pending in
    t.pending <- 0;
    Some (Printf.sprintf "%s: %d more %s not logged" t.name n t.what)

let write t = Option.iter (fun s -> Log.msg t.level "%s" s)

let msg t fmt =
  let summary, admitted =
    with_lock t.m (fun () ->
        let now = Unix.gettimeofday () in
        let summary =
          if now -. t.window >= t.interval then (
            t.window <- now;
            t.count <- 0;
            take_summary t)
          else None
        in
        t.count <- t.count + 1;
        if t.count <= t.burst then (summary, true)
        else (
          t.pending <- t.pending + 1;
          t.total <- t.total + 1;
          (summary, false)))
  in
  write t summary;
  if admitted then Printf.ksprintf (fun s -> Log.msg t.level "%s" s) fmt
  else Printf.ikfprintf (fun () -> ()) () fmt

let tick t =
  if t.pending > 0 then
    write t
      (with_lock t.m (fun () ->
           let now = Unix.gettimeofday () in
           if now -. t.window >= t.interval then (
             t.window <- now;
             t.count <- 0;
             take_summary t)
           else None))

let flush t = write t (with_lock t.m (fun () -> take_summary t))
let suppressed t = with_lock t.m (fun () -> t.total)
