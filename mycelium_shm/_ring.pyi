"""The cffi-compiled core (built by _ffi_build.py).  cffi generates no type
information: ``ffi`` and ``lib`` are untyped, and _native.py is the typed
layer over them (its ``check_*``, ``raise_for`` and ``wait_call``)."""

from typing import Any

ffi: Any
lib: Any
