"""``python -m mycelium_shm.codegen``: see :func:`mycelium_shm.codegen.main`."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
