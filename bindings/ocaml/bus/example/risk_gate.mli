(** The example of bindings/ocaml/README.md, "Writing a service": a node
    hosting one service, [risk], which turns signals into orders while the
    position stays within its limit. *)
