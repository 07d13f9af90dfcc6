(** A node process: build the bus, endpoints, links and services from the
    launcher's plan, and run them until SIGINT/SIGTERM.

    A whole OCaml node executable:
    {[
      let () =
        Mycelium_bus.Node.main (module Trading)
          [ ("risk", Risk.service); ("order_manager", Order_manager.service) ]
    ]}
    started as [node.exe --plan PATH] (or with [MYCELIUM_BUS_PLAN=PATH]). *)

type registry = (string * Service.factory) list
(** Service names (as in the topology) and their factories. *)

val build :
  ?mailbox_size:int ->
  ?restart_initial:float ->
  ?restart_max:float ->
  ?max_restarts:int ->
  (module Mycelium_codec.SCHEMA) ->
  registry ->
  Plan.t ->
  (Runtime.t, Bus_error.t) result
(** [build schema registry plan] checks that the plan's digest is
    [schema]'s ([Schema_mismatch] otherwise), opens the inbound endpoint,
    the links (a link's message names must be in [schema]), the broadcast
    publication and subscriptions (the ["publication"] and
    ["subscriptions"] of a [shm = "broadcast"] topology), and makes the
    runtime of the plan's services (each must be in [registry]).  Nothing
    is started; on [Error] whatever was opened is closed. *)

val main :
  ?argv:string array ->
  ?mailbox_size:int ->
  ?restart_initial:float ->
  ?restart_max:float ->
  ?max_restarts:int ->
  (module Mycelium_codec.SCHEMA) ->
  registry ->
  unit
(** [main schema registry] catches SIGINT/SIGTERM first, reads the plan
    ([--plan PATH] in [argv], default [Sys.argv], else the environment
    variable [MYCELIUM_BUS_PLAN]), logs with the node's name as prefix,
    {!build}s and {!Runtime.run}s the node, and exits with its code (0 on a
    clean shutdown; 2, with one line on stderr, if the plan or the node is
    unusable). *)
