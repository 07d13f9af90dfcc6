"""Build the two compiled modules; everything else lives in pyproject.toml.

* ``mycelium_shm._ring``: the cffi binding of csrc/ (mycelium_shm/_ffi_build.py).
* ``mycelium_shm._fastpath``: the non-blocking hot calls of ShmWriter and
  ShmReader, without cffi's per-call cost (see the comment in _fastpath.c).
"""

import glob

from setuptools import Extension, setup

CORE = sorted(glob.glob("csrc/*.c") + glob.glob("csrc/*.h"))

setup(
    cffi_modules=["mycelium_shm/_ffi_build.py:ffibuilder"],
    ext_modules=[
        Extension(
            "mycelium_shm._fastpath",
            sources=["mycelium_shm/_fastpath.c"],
            include_dirs=["csrc"],
            depends=CORE,
            extra_compile_args=["-std=c11", "-O2"],
        )
    ],
)
