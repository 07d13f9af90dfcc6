type address = Unix_socket of string | Tcp of string * int

let describe = function
  | Unix_socket p -> "unix:" ^ p
  | Tcp (h, p) -> Printf.sprintf "tcp:%s:%d" h p

let transport fmt = Printf.ksprintf (fun s -> Error (Bus_error.Transport s)) fmt
let close_quietly fd = try Unix.close fd with Unix.Unix_error _ -> ()
let ignore_sigpipe () = Sys.set_signal Sys.sigpipe Sys.Signal_ignore

let sockaddr = function
  | Unix_socket p -> Ok (Unix.ADDR_UNIX p)
  | Tcp (h, port) -> (
      match Unix.inet_addr_of_string h with
      | a -> Ok (Unix.ADDR_INET (a, port))
      | exception Failure _ -> (
          match Unix.gethostbyname h with
          | { Unix.h_addr_list; _ } when Array.length h_addr_list > 0 ->
              Ok (Unix.ADDR_INET (h_addr_list.(0), port))
          | _ | (exception Not_found) -> transport "unknown host %S" h))

let domain_of = function
  | Unix.ADDR_UNIX _ -> Unix.PF_UNIX
  | Unix.ADDR_INET (a, _) -> Unix.domain_of_sockaddr (Unix.ADDR_INET (a, 0))

let set_timeouts fd s =
  Unix.setsockopt_float fd Unix.SO_RCVTIMEO s;
  Unix.setsockopt_float fd Unix.SO_SNDTIMEO s

let err_text e fn = Printf.sprintf "%s: %s" fn (Unix.error_message e)

let connect ~timeout address =
  match sockaddr address with
  | Error _ as e -> e
  | Ok sa -> (
      let fd = Unix.socket ~cloexec:true (domain_of sa) Unix.SOCK_STREAM 0 in
      try
        (match sa with Unix.ADDR_INET _ -> Unix.setsockopt fd Unix.TCP_NODELAY true | _ -> ());
        set_timeouts fd timeout;
        Unix.connect fd sa;
        Ok fd
      with Unix.Unix_error (e, fn, _) ->
        close_quietly fd;
        transport "connecting to %s: %s" (describe address) (err_text e fn))

let read_exact fd b off n =
  let rec go got =
    if got = n then `Ok
    else
      match Unix.read fd b (off + got) (n - got) with
      | 0 -> `Eof got
      | k -> go (got + k)
      | exception Unix.Unix_error (Unix.EINTR, _, _) -> go got
  in
  go 0

let write_all fd s =
  let n = String.length s in
  let rec go off =
    if off < n then
      match Unix.write_substring fd s off (n - off) with
      | k -> go (off + k)
      | exception Unix.Unix_error (Unix.EINTR, _, _) -> go off
  in
  go 0

let peer_gone fd =
  let b = Bytes.create 1 in
  match Unix.set_nonblock fd with
  | exception Unix.Unix_error _ -> true
  | () ->
      let gone =
        match Unix.recv fd b 0 1 [ Unix.MSG_PEEK ] with
        | 0 -> true
        | _ -> false
        | exception Unix.Unix_error ((Unix.EAGAIN | Unix.EWOULDBLOCK | Unix.EINTR), _, _) -> false
        | exception Unix.Unix_error _ -> true
      in
      (try Unix.clear_nonblock fd with Unix.Unix_error _ -> ());
      gone

let remove_stale_unix_socket path =
  match Unix.lstat path with
  | exception Unix.Unix_error (Unix.ENOENT, _, _) -> Ok ()
  | exception Unix.Unix_error (e, fn, _) -> transport "%s: %s" path (err_text e fn)
  | { Unix.st_kind = Unix.S_SOCK; _ } -> (
      let probe = Unix.socket ~cloexec:true Unix.PF_UNIX Unix.SOCK_STREAM 0 in
      match Unix.connect probe (Unix.ADDR_UNIX path) with
      | () ->
          close_quietly probe;
          transport "%s: another process is listening there" path
      | exception Unix.Unix_error ((Unix.ECONNREFUSED | Unix.ENOENT), _, _) ->
          close_quietly probe;
          (try Unix.unlink path with Unix.Unix_error _ -> ());
          Ok ()
      | exception Unix.Unix_error (e, fn, _) ->
          close_quietly probe;
          transport "%s: %s" path (err_text e fn))
  | _ -> transport "%s exists and is not a socket" path

let listen ?(backlog = 1024) address =
  let ( let* ) = Result.bind in
  let* () = match address with Unix_socket p -> remove_stale_unix_socket p | Tcp _ -> Ok () in
  let* sa = sockaddr address in
  let fd = Unix.socket ~cloexec:true (domain_of sa) Unix.SOCK_STREAM 0 in
  try
    (match sa with Unix.ADDR_INET _ -> Unix.setsockopt fd Unix.SO_REUSEADDR true | _ -> ());
    Unix.bind fd sa;
    Unix.listen fd backlog;
    let bound =
      match (address, Unix.getsockname fd) with
      | Tcp (h, _), Unix.ADDR_INET (_, port) -> Tcp (h, port)
      | a, _ -> a
    in
    Ok (fd, bound)
  with Unix.Unix_error (e, fn, _) ->
    close_quietly fd;
    transport "listening on %s: %s" (describe address) (err_text e fn)
