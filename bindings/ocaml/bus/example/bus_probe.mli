(** The OCaml probe node of the cross-language bus matrix
    (tests/test_bus_matrix.py): the services [send] and [recv] of
    tests/bus_probe.py, with the same names, config and output in every
    language, run by {!Mycelium_bus.Node.main} from the launcher's plan
    ([bus_probe.exe --plan PATH]); tests/test_bus_broadcast_langs.py runs it
    too, with plans carrying a broadcast ["publication"] or
    ["subscriptions"].

    - [send], config [{count, symbol, out}]: publishes [count] MarketTicks at
      start (tick [i]: [seq = i], [ts_ns = 1_700_000_000_000_000_000 + i],
      [bid = 1 + i/1024], [ask = bid + 0.25], [bid_size = i],
      [ask_size = 4294967295 - i]), appends [sent <count>] to [out], then
      idles until the node stops.  A publish that fails is logged and ends
      the burst (no [sent] line).
    - [recv], config [{out, panic_at?}]: appends
      [tick <symbol> <seq> <ts_ns> <bid> <ask> <bid_size> <ask_size>] to
      [out] for every MarketTick (floats as [%.17g], which reads back to the
      same double); with [panic_at = N] the handler raises on the tick of
      seq [N] instead (once per instance: the runtime restarts the service
      and the stream goes on).

    The probe is built for two schemas, schemas/trading.toml and
    tests/vectors/schema.toml (the same MarketTick, another digest), and
    runs with the one whose digest the plan names, so the matrix can put two
    compiled languages on a link with different schemas and see both
    refuse. *)
