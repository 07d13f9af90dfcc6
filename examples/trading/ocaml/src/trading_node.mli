(** The OCaml node program of the trading example: services [risk]
    ({!Risk}) and [oms] ({!Oms}), started by the launcher with [--plan]. *)
