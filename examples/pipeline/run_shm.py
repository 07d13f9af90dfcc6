"""The trading pipeline with one process per service over shared memory (shm.toml)."""

from __future__ import annotations

from runner import main

if __name__ == "__main__":
    main("shm.toml", in_process=False)
