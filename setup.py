"""Build the cffi extension; everything else lives in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["mycelium_shm/_ffi_build.py:ffibuilder"])
