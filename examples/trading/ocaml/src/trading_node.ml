let () =
  Mycelium_bus.Node.main
    (module Trading_messages.Trading)
    [ ("risk", Risk.service); ("oms", Oms.service) ]
