"""Build the two compiled modules; everything else lives in pyproject.toml.

* ``mycelium_shm._ring``: the cffi binding of csrc/ (mycelium_shm/_ffi_build.py).
* ``mycelium_shm._fastpath``: the non-blocking hot calls of ShmWriter and
  ShmReader, without cffi's per-call cost (see the comment in _fastpath.c).

Package data made at build time: the schema files of ``schemas/`` (their
canonical place, used by the tests, the bindings' codegen and the benchmark)
are copied into ``mycelium_shm/schemas/`` of the build, so a wheel carries
them (``mycelium_shm.schemas.path("trading")``).
"""

import glob
import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

SCHEMAS = sorted(glob.glob("schemas/*.toml"))


class build_py_with_schemas(build_py):
    """build_py, plus a copy of schemas/*.toml into mycelium_shm/schemas/."""

    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads schemas/ itself
            return
        target = os.path.join(self.build_lib, "mycelium_shm", "schemas")
        os.makedirs(target, exist_ok=True)
        for src in SCHEMAS:
            shutil.copyfile(src, os.path.join(target, os.path.basename(src)))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        target = os.path.join(self.build_lib, "mycelium_shm", "schemas")
        return outputs + [os.path.join(target, os.path.basename(src)) for src in SCHEMAS]

CORE = sorted(glob.glob("csrc/*.c") + glob.glob("csrc/*.h"))

setup(
    cmdclass={"build_py": build_py_with_schemas},
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
