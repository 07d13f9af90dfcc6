"""mycelium-shm benchmark suite; run it with `python -m bench [--quick]`."""
