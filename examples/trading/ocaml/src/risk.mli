(** The risk engine: pre-trade checks on each [Signal]; an approved one
    becomes an [OrderRequest] for the venue.  The rules, operation for
    operation, of [Risk] in examples/trading/reference.py:

    - checks, first failure wins: [qty] (1 .. [max_order_qty]), [collar]
      (limit within [collar_pips] of the tick's mid), [rate] (at most
      [max_orders] approved in the last [window_ticks] ticks), [position]
      (|position after a full fill| <= [max_position]), [notional] (sum of
      |position| x mid in pips <= [max_gross_notional]);
    - positions come from the venue's fills, and at most one order is in
      flight: a signal arriving while an order waits for its last [Fill] is
      queued, and the queue is worked off in arrival order when that fill
      comes.  Every decision so sees exactly the fills of the orders before
      it, whatever the timing of the two streams;
    - one audit line per decision in [audit_dir/risk.log];
    - on [EndOfSignals], once the queue is empty and no order is in flight:
      [EndOfOrders], the last audit line, a [RISK {...}] line on stdout with
      the counts and, on CLOCK_MONOTONIC, the latency from tick to signal
      arrival here ([tick_to_risk_us]) and the time signals spent in the
      queue ([queue_wait_us]: the price of the one order in flight). *)

val service : Mycelium_bus.Service.factory
(** [service ctx] is a fresh risk engine configured by [ctx]'s config
    (keys above, and [audit_dir]). *)
