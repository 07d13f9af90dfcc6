"""The trading pipeline with all services in one process (inprocess.toml)."""

from __future__ import annotations

from runner import main

if __name__ == "__main__":
    main("inprocess.toml", in_process=True)
