"""The trading pipeline with one process per service over shared-memory
broadcast channels, one per publishing node (broadcast.toml)."""

from __future__ import annotations

from runner import main

if __name__ == "__main__":
    main("broadcast.toml", in_process=False)
