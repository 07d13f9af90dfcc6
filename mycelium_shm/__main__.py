"""``python -m mycelium_shm``: the ``mycelium-shm`` command (see :mod:`mycelium_shm.cli`)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
