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

type publication = {
  pub_name : string;  (** The broadcast channel. *)
  pub_capacity : int;  (** Ring bytes when it is created. *)
  subscribers : string list;  (** Consuming nodes: one durable cursor each. *)
  spare_readers : int;  (** Cursor slots beyond one per subscriber. *)
  untether_ms : int;  (** The untether window, milliseconds. *)
  pub_types : string list;  (** Message names published there. *)
}
(** The broadcast channel this node publishes on (["publication"] of a
    plan of a [shm = "broadcast"] topology): see {!Link.shm_publication}. *)

type subscription = {
  from_node : string;  (** The publishing node. *)
  channel : string;  (** Its broadcast channel. *)
  cursor : string;  (** This node's cursor there. *)
}
(** Another node's broadcast channel this node reads (["subscriptions"]):
    see {!Inbound.shm_subscription}. *)

type t = {
  version : int;  (** [1]. *)
  topology : string;  (** The topology file (absolute path). *)
  node : string;  (** This node's name. *)
  language : string;  (** ["ocaml"]. *)
  schema_path : string;  (** The schema file. *)
  digest_hex : string;  (** The schema digest, 64 hex digits. *)
  services : service list;  (** Topology order (= shutdown order). *)
  inbound : endpoint option;  (** Where this node receives, if anywhere. *)
  links : link list;  (** Where it sends (broadcast topologies: unix/tcp only). *)
  publication : publication option;  (** Its broadcast channel, if any. *)
  subscriptions : subscription list;  (** Broadcast channels it reads. *)
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
