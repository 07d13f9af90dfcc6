let now = Unix.gettimeofday

let with_lock m f =
  Mutex.lock m;
  match f () with
  | v ->
      Mutex.unlock m;
      v
  | exception e ->
      Mutex.unlock m;
      raise e
let deadline = Option.map (fun t -> now () +. t)

let wait_until m c deadline ready =
  match deadline with
  | None ->
      while not (ready ()) do
        Condition.wait c m
      done;
      true
  | Some d ->
      let slice = ref 0.001 in
      let rec go () =
        if ready () then true
        else
          let left = d -. now () in
          if left <= 0. then false
          else (
            Mutex.unlock m;
            Thread.delay (Float.min !slice left);
            Mutex.lock m;
            slice := Float.min 0.01 (!slice *. 2.);
            go ())
      in
      go ()

let sleep_unless seconds stop =
  let d = now () +. seconds in
  let rec go () =
    if not (stop ()) then
      let left = d -. now () in
      if left > 0. then (
        Thread.delay (Float.min 0.01 left);
        go ())
  in
  go ()
