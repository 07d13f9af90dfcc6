type endpoint =
  | Shm of { name : string; capacity : int }
  | Unix_socket of string
  | Tcp of { host : string; port : int }

type service = { name : string; consumes : string list; config : Yojson.Safe.t }
type link = { node : string; types : string list; endpoint : endpoint }

type publication = {
  pub_name : string;
  pub_capacity : int;
  subscribers : string list;
  spare_readers : int;
  untether_ms : int;
  pub_types : string list;
}

type subscription = { from_node : string; channel : string; cursor : string }

type t = {
  version : int;
  topology : string;
  node : string;
  language : string;
  schema_path : string;
  digest_hex : string;
  services : service list;
  inbound : endpoint option;
  links : link list;
  publication : publication option;
  subscriptions : subscription list;
}

exception Bad of string

let bad fmt = Printf.ksprintf (fun s -> raise (Bad s)) fmt

let field ?(optional = false) where j key =
  match j with
  | `Assoc kv -> (
      match List.assoc_opt key kv with
      | Some v -> v
      | None -> if optional then `Null else bad "%s: missing key %S" where key)
  | _ -> bad "%s: not an object" where

let str where = function `String s -> s | _ -> bad "%s: not a string" where
let int where = function `Int i -> i | _ -> bad "%s: not an integer" where
let list where f = function `List l -> List.mapi (fun i x -> f (Printf.sprintf "%s[%d]" where i) x) l | `Null -> [] | _ -> bad "%s: not a list" where

let endpoint where j =
  let kind = str (where ^ ".kind") (field where j "kind") in
  match kind with
  | "shm" ->
      let capacity =
        match field ~optional:true where j "capacity" with
        | `Null -> 1 lsl 20
        | c -> int (where ^ ".capacity") c
      in
      Shm { name = str (where ^ ".name") (field where j "name"); capacity }
  | "unix" -> Unix_socket (str (where ^ ".path") (field where j "path"))
  | "tcp" ->
      let port = int (where ^ ".port") (field where j "port") in
      if port < 0 || port > 65535 then bad "%s.port: %d is not a port" where port;
      Tcp { host = str (where ^ ".host") (field where j "host"); port }
  | k -> bad "%s.kind: unknown endpoint kind %S (shm, unix or tcp)" where k

let nat where v =
  let i = int where v in
  if i < 0 then bad "%s: %d is negative" where i;
  i

let publication where j =
  (match str (where ^ ".kind") (field where j "kind") with
  | "shm-broadcast" -> ()
  | k -> bad "%s.kind: unknown kind %S (shm-broadcast)" where k);
  {
    pub_name = str (where ^ ".name") (field where j "name");
    pub_capacity = nat (where ^ ".capacity") (field where j "capacity");
    subscribers = list (where ^ ".subscribers") str (field where j "subscribers");
    spare_readers = nat (where ^ ".spare_readers") (field where j "spare_readers");
    untether_ms = nat (where ^ ".untether_ms") (field where j "untether_ms");
    pub_types = list (where ^ ".types") str (field where j "types");
  }

let of_json_exn j =
  let version = int "version" (field "plan" j "version") in
  if version <> 1 then bad "version: %d, this node reads version 1" version;
  let schema = field "plan" j "schema" in
  let digest_hex = str "schema.digest" (field "schema" schema "digest") in
  (match Wire.digest_of_hex digest_hex with Ok _ -> () | Error e -> bad "schema.digest: %s" e);
  let opt_str key = match field ~optional:true "plan" j key with `Null -> "" | v -> str key v in
  {
    version;
    topology = opt_str "topology";
    node = str "node" (field "plan" j "node");
    language = opt_str "language";
    schema_path = (match field ~optional:true "schema" schema "path" with `Null -> "" | v -> str "schema.path" v);
    digest_hex;
    services =
      list "services"
        (fun w s ->
          {
            name = str (w ^ ".name") (field w s "name");
            consumes = list (w ^ ".consumes") str (field ~optional:true w s "consumes");
            config = (match field ~optional:true w s "config" with `Null -> `Assoc [] | c -> c);
          })
        (field "plan" j "services");
    inbound =
      (match field ~optional:true "plan" j "inbound" with
      | `Null -> None
      | e -> Some (endpoint "inbound" e));
    links =
      list "links"
        (fun w l ->
          {
            node = str (w ^ ".node") (field w l "node");
            types = list (w ^ ".types") str (field w l "types");
            endpoint = endpoint (w ^ ".endpoint") (field w l "endpoint");
          })
        (field ~optional:true "plan" j "links");
    publication =
      (match field ~optional:true "plan" j "publication" with
      | `Null -> None
      | p -> Some (publication "publication" p));
    subscriptions =
      list "subscriptions"
        (fun w s ->
          {
            from_node = str (w ^ ".node") (field w s "node");
            channel = str (w ^ ".name") (field w s "name");
            cursor = str (w ^ ".cursor") (field w s "cursor");
          })
        (field ~optional:true "plan" j "subscriptions");
  }

let of_json j = try Ok (of_json_exn j) with Bad s -> Error (Bus_error.Plan s)

let load path =
  match Yojson.Safe.from_file path with
  | j -> ( match of_json j with Ok _ as r -> r | Error (Bus_error.Plan s) -> Error (Bus_error.Plan (path ^ ": " ^ s)) | e -> e)
  | exception Sys_error e -> Error (Bus_error.Plan e)
  | exception Yojson.Json_error e -> Error (Bus_error.Plan (path ^ ": " ^ e))

let socket_address = function
  | Shm _ -> None
  | Unix_socket p -> Some (Sock.Unix_socket p)
  | Tcp { host; port } -> Some (Sock.Tcp (host, port))

let describe = function
  | Shm { name; _ } -> "shm:" ^ name
  | Unix_socket p -> "unix:" ^ p
  | Tcp { host; port } -> Printf.sprintf "tcp:%s:%d" host port
