"""The trading pipeline with two processes over TCP loopback (tcp.toml)."""

from __future__ import annotations

from runner import main

if __name__ == "__main__":
    main("tcp.toml", in_process=False)
