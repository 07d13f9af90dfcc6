#!/bin/sh
# Install what the libFuzzer harness (tests/fuzz, `make fuzz` / `make test-fuzz`)
# needs on a Debian machine: clang, its compiler-rt runtimes (libFuzzer,
# ASan, UBSan: libclang_rt.fuzzer-*.a is in libclang-rt-<N>-dev, not in the
# clang package) and llvm-symbolizer for readable stack traces.
# The unversioned metapackages keep clang and its runtimes at the same
# version (14 on Debian 12).  Idempotent: does nothing when clang can already
# link a fuzzer; otherwise runs `apt-get update` once and installs.
# Must run as root; otherwise prints the command to run and exits 1.
set -eu

PACKAGES="clang libclang-rt-dev llvm"

# A fuzzer links only if the runtime is there: try it rather than trust dpkg.
can_link_fuzzer() {
    command -v clang >/dev/null 2>&1 || return 1
    dir=$(mktemp -d)
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
        >"$dir/probe.c"
    ok=1
    clang -fsanitize=fuzzer,address,undefined "$dir/probe.c" -o "$dir/probe" >/dev/null 2>&1 || ok=0
    rm -rf "$dir"
    [ "$ok" -eq 1 ]
}

if can_link_fuzzer && command -v llvm-symbolizer >/dev/null 2>&1; then
    echo "install-clang: present: $(clang --version | head -n 1)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-clang: clang with libFuzzer (or llvm-symbolizer) is missing" >&2
    echo "install-clang: run as root: apt-get update && apt-get install -y --no-install-recommends $PACKAGES" >&2
    exit 1
fi

echo "install-clang: installing: $PACKAGES"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $PACKAGES

if ! can_link_fuzzer; then
    echo "install-clang: clang still cannot link -fsanitize=fuzzer" >&2
    exit 1
fi
echo "install-clang: installed: $(clang --version | head -n 1)"
