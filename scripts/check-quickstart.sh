#!/bin/sh
# The README's quick start, as a new user runs it: a fresh clone, `make demo`
# with Debian's own python3 (PEP 668 "externally managed").  Passes only if
# the demo runs and that interpreter's site-packages are untouched.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${QUICKSTART_PYTHON:-/usr/bin/python3}

stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
if [ ! -f "$stdlib/EXTERNALLY-MANAGED" ]; then
    echo "check-quickstart: $python carries no PEP 668 marker ($stdlib/EXTERNALLY-MANAGED); set QUICKSTART_PYTHON to one that does" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# Every directory the interpreter would install into, listed before and after.
"$python" - >"$tmp/sites" <<'PY'
import site, sysconfig
paths = {sysconfig.get_path(k) for k in ("purelib", "platlib")}
paths.update(site.getsitepackages())
paths.add(site.getusersitepackages())
print("\n".join(sorted(paths)))
PY
snapshot() {
    while read -r dir; do
        [ -d "$dir" ] && find "$dir" -maxdepth 2 -printf '%p %T@\n'
    done <"$tmp/sites" | sort
}
snapshot >"$tmp/before"

git clone --quiet "$repo" "$tmp/clone"
echo "check-quickstart: make demo in a fresh clone with $python (externally managed)"
make -C "$tmp/clone" --no-print-directory demo SYS_PYTHON="$python" >"$tmp/demo.log" 2>&1 || {
    tail -n 30 "$tmp/demo.log" >&2
    echo "check-quickstart: make demo failed" >&2
    exit 1
}
grep -q "0 lost" "$tmp/demo.log" || { tail -n 30 "$tmp/demo.log" >&2; echo "check-quickstart: the demo did not report 0 lost" >&2; exit 1; }

snapshot >"$tmp/after"
if ! cmp -s "$tmp/before" "$tmp/after"; then
    diff "$tmp/before" "$tmp/after" >&2 || true
    echo "check-quickstart: the system interpreter's site-packages changed" >&2
    exit 1
fi
echo "check-quickstart: demo ran in $tmp/clone/.venv; $python's site-packages untouched"
