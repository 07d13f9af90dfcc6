(** An OCaml bus node with three services over schemas/trading.toml, for
    tests and as an example:
    - [ticker] publishes MarketTick seq 1, 2, ... ([config]: [count], 0 for
      until stopped; [interval_us] between ticks; [symbol]); after [count]
      ticks it publishes Stop and stops the node.  Its [on_stop] prints
      ["published N"].
    - [counter] (consumes MarketTick, Stop) prints ["tick SEQ SYMBOL"] per
      tick and ["stop LAST_SEQ"] on Stop, then stops the node (unless
      [exit_on_stop] is false).
    - [crasher] (consumes MarketTick) raises on every tick whose seq is a
      multiple of [fail_every] and prints ["handled SEQ"] for the others and
      ["start"] whenever an instance starts. *)
