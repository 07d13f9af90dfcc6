(* Tests of mycelium_shm.bus; no interface. *)
