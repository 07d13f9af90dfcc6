(** The order manager: order states, positions and cash from the venue's
    [Fill] reports, and the execution audit log ([audit_dir/oms.log]): one
    line per fill, one when an order closes (filled, partial: the rest
    cancelled, or cancelled), the final positions and cash.  The rules of
    [OrderManager] in examples/trading/reference.py.  On [EndOfFills] it
    prints [OMS {...}] on stdout, with the FNV-1a checksum of the fills it
    booked (equal to the venue's when nothing was lost or reordered). *)

val service : Mycelium_bus.Service.factory
(** [service ctx] is a fresh order manager configured by [ctx]'s config
    ([lot_units], [audit_dir]). *)
