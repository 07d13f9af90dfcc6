#!/bin/sh
# Create the project's virtual environment: make-venv.sh PYTHON DIR.
#
# The quick start never installs into the interpreter it is given (Debian's
# python3 refuses that anyway: PEP 668, "externally-managed-environment").
# Debian splits venv/ensurepip and the C headers out of python3; as root
# this installs them (python3-venv, python3-dev), otherwise it says which
# packages to install.
set -eu
python=${1:-python3}
dir=${2:-.venv}

if "$python" -m venv "$dir" >/dev/null 2>&1 && [ -x "$dir/bin/python" ]; then
    missing_headers=$("$dir/bin/python" -c 'import os, sysconfig; print("" if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else "yes")')
    [ -z "$missing_headers" ] && exit 0
fi
rm -rf "$dir"
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
packages="python3-venv python$version-venv python3-dev python$version-dev"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "make-venv: installing $packages (Debian splits venv and the C headers out of python3)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
    "$python" -m venv "$dir"
    exit 0
fi
echo "make-venv: '$python -m venv' failed or Python.h is missing; install $packages (e.g. sudo apt-get install $packages) and run make again" >&2
exit 1
