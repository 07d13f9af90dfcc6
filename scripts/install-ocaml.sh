#!/bin/sh
# Install what the OCaml binding (bindings/ocaml) needs on a Debian machine:
# the compiler, dune, findlib, ctypes (with its Cstubs generator) and libffi,
# alcotest and yojson for its tests.  Idempotent: installs only what is
# missing, and runs `apt-get update` once, only when something is missing.
# Must run as root; otherwise prints the command to run and exits 1.
set -eu

PACKAGES="ocaml-nox ocaml-dune ocaml-findlib libctypes-ocaml-dev libffi-dev \
libalcotest-ocaml-dev libyojson-ocaml-dev gcc"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-ocaml: all present:$(printf ' %s' $PACKAGES)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-ocaml: missing:$missing" >&2
    echo "install-ocaml: run as root: apt-get update && apt-get install -y$missing" >&2
    exit 1
fi

echo "install-ocaml: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq $missing
