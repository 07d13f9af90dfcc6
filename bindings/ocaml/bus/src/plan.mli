(** The node plan: the JSON that [python -m mycelium_shm.bus plan
    topology.toml --node NAME] prints and the launcher hands to a node with
    [--plan PATH] (format: the project's plan-format notes, version 1).
    Python is the only parser of topology files; this reads its output. *)

(** Where a node receives, or where a link writes. *)
type endpoint =
  | Shm of { name : string; capacity : int }
      (** A shared-memory channel ([capacity] defaults to 1 MiB). *)
  | Unix_socket of string  (** A Unix socket path. *)
  | Tcp of { host : string; port : int }  (** A TCP address. *)

type service = {
  name : string;  (** The service's name. *)
  consumes : string list;  (** Message names it may handle. *)
  config : Yojson.Safe.t;  (** Its config table ([`Assoc], maybe empty). *)
}
(** A service of the node, in topology order. *)

type link = {
  node : string;  (** The consuming node. *)
  types : string list;  (** Message names sent there. *)
  endpoint : endpoint;  (** That node's inbound. *)
}
(** One remote node this node sends to. *)

type t = {
  version : int;  (** [1]. *)
  topology : string;  (** The topology file (absolute path). *)
  node : string;  (** This node's name. *)
  language : string;  (** ["ocaml"]. *)
  schema_path : string;  (** The schema file. *)
  digest_hex : string;  (** The schema digest, 64 hex digits. *)
  services : service list;  (** Topology order (= shutdown order). *)
  inbound : endpoint option;  (** Where this node receives, if anywhere. *)
  links : link list;  (** Where it sends. *)
}
(** A plan. *)

val of_json : Yojson.Safe.t -> (t, Bus_error.t) result
(** [of_json j] checks and converts a plan; [Plan] names the bad key. *)

val load : string -> (t, Bus_error.t) result
(** [load path] reads and converts the plan file [path]. *)

val socket_address : endpoint -> Sock.address option
(** [socket_address e] is the socket address of a Unix or TCP endpoint. *)

val describe : endpoint -> string
(** [describe e] is ["shm:NAME"], ["unix:PATH"] or ["tcp:HOST:PORT"]. *)
