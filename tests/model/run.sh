#!/usr/bin/env bash
# Model-check tests/model/ring.pml (the format-2 ring protocol) and
# tests/model/broadcast.pml (the cursor rules of broadcast channels) with spin.
#
#   bash tests/model/run.sh            # or: make test-model
#
# Runs, each in its own directory under tests/model/build/run.XXXXXX (the
# previous run's directory is removed first; the last one stays, with the
# counterexample trails):
#   - the model (DESIGN-v2 with amendments A1-A3, see ring.pml): an
#     exhaustive search that must find no error;
#   - the broken variants (deliberately wrong protocols, and the design as
#     written where the model needed an amendment): each must find an error;
#   - docs/FORMAT.md's newer claim-range rules: with three fixes, no error;
#     without each fix, an error;
#   - the coverage points (-DCOVER=n): each must be reached, so that the
#     search above is known to go through the interesting cases;
#   - broadcast.pml: its configurations (no error), its broken variants
#     (each must fail, including the two-writer finding), its coverage
#     points.
# MODEL_FINE=1 adds two much larger searches with finer-grained steps.
# Prints one line per run; exits non-zero if anything is not as expected.
# Replay a trail:  cd <dir> && spin -t -p <flags> ring.pml   (or broadcast.pml)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="$here/ring.pml"
build="$here/build"

# -- tools ------------------------------------------------------------------

if ! command -v spin >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "run.sh: spin is not installed and apt-get is not available;" \
             "install spin (Debian/Ubuntu package 'spin', or https://spinroot.com)" >&2
        exit 1
    fi
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "run.sh: spin is not installed, and installing it with apt-get needs" \
                 "root (or password-less sudo); run: apt-get install spin" >&2
            exit 1
        fi
    fi
    echo "run.sh: installing spin with apt-get"
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
       ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spin >/dev/null; then
        echo "run.sh: apt-get could not install spin" >&2
        exit 1
    fi
fi
cc="${CC:-gcc}"
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: no C compiler ($cc) to build spin's verifier" >&2
    exit 1
fi

mkdir -p "$build"
rm -rf "$build"/run.*
work="$(mktemp -d "$build/run.XXXXXX")"

# pan: exhaustive safety search (assertions, invalid end states), states
# stored compressed; MEMLIM (MB) stops a search that outgrows the machine.
pan_cflags=(-w -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=4096)
pan_flags=(-m100000 -w26)       # -w26: a hash table for ~16M states

status=0

# verify NAME EXPECT [spin -D flags...]
#   EXPECT: pass (no error, exhaustive search), fail (some error), or
#   reach:TEXT (coverage point: its assertion fails). Returns 1 if not so.
verify() {
    local name="$1" expect="$2"
    shift 2
    local dir="$work/$name"
    mkdir -p "$dir"
    local file
    file="$(basename "$model")"
    cp "$model" "$dir/$file"
    if ! (cd "$dir" && spin -a "$@" "$file" >spin.out 2>&1); then
        echo "FAIL  $name: spin -a failed (see $dir/spin.out)"
        return 1
    fi
    if ! (cd "$dir" && "$cc" "${pan_cflags[@]}" -o pan pan.c >cc.out 2>&1); then
        echo "FAIL  $name: cannot compile the verifier (see $dir/cc.out)"
        return 1
    fi
    (cd "$dir" && ./pan "${pan_flags[@]}" >pan.out 2>&1) || true
    local out="$dir/pan.out"
    local errors states secs mem what complete=yes
    errors="$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | head -n1)"
    states="$(awk '/states, stored/ {print $1; exit}' "$out")"
    secs="$(awk '/pan: elapsed time/ {print $4; exit}' "$out")"
    mem="$(awk '/total actual memory usage/ {printf "%.0f", $1; exit}' "$out")"
    what="$(grep -m1 -E '^pan:1: ' "$out" | sed -e 's/^pan:1: //' -e 's/ (at depth [0-9]*)//' || true)"
    if grep -qE 'reached -DMEMLIM bound|max search depth too small|Search not completed' "$out"; then
        complete=no
    fi
    if [ -z "$errors" ]; then
        echo "FAIL  $name: the verifier did not finish (see $out)"
        return 1
    fi
    local stats="${states:-?} states, ${secs:-?} s, ${mem:-?} MB"
    case "$expect" in
    pass)
        if [ "$errors" -eq 0 ] && [ "$complete" = yes ]; then
            echo "ok    $name: no error, exhaustive ($stats)"
        elif [ "$errors" -eq 0 ]; then
            echo "FAIL  $name: search not exhaustive ($stats; see $out)"
            return 1
        else
            echo "FAIL  $name: $what ($stats; trail in $dir)"
            return 1
        fi
        ;;
    fail)
        if [ "$errors" -gt 0 ]; then
            echo "ok    $name: fails as it must: $what ($stats)"
        else
            echo "FAIL  $name: no error found, but this variant is broken ($stats)"
            return 1
        fi
        ;;
    reach:*)
        if [ "$errors" -gt 0 ] && [[ "$what" == "assertion violated"* ]]; then
            echo "ok    $name: reached: ${expect#reach:} ($stats)"
        else
            echo "FAIL  $name: not reached: ${expect#reach:} (${what:-no error}; $stats)"
            return 1
        fi
        ;;
    esac
}

echo "== the first format-2 design (DESIGN-v2, in git history) with amendments A1-A3: no error"
verify model pass || status=1
pan_flags=(-m100000)

echo "== broken protocols: each must fail"
verify BUG_RECLAIM_LIVE fail -DBUG_RECLAIM_LIVE || status=1  # reader reclaims a live writer's claim (format 1)
verify BUG_NO_STAMP fail -DBUG_NO_STAMP || status=1          # reader ignores the stamp's position
verify BUG_NO_RELOAD fail -DBUG_NO_RELOAD || status=1        # reclaim without re-loading the stamp
verify BUG_NO_HOLD fail -DBUG_NO_HOLD || status=1            # writers ignore HOLD
verify BUG_HOLD_FIRST fail -DBUG_HOLD_FIRST || status=1      # writers load HOLD before HEAD

echo "== DESIGN-v2 as written, where the model amends it: each must fail"
verify STALE_RANGE fail -DSTALE_RANGE || status=1            # A1: deadlock
verify CORRUPT_NO_RELOAD fail -DCORRUPT_NO_RELOAD || status=1  # A2: false CorruptChannel
verify HOLD_SLOT_BY_RANGE fail -DHOLD_SLOT_BY_RANGE -DNO_WRITE_TIMEOUT || status=1  # A3: deadlock
#   (with write timeouts the writers do not deadlock: they time out for good)

echo "== payload bytes that look like a stamp: the first design fails (the implemented rules pass, see FORMAT_MD_FIXED)"
verify FORGE_PAYLOAD fail -DFORGE_PAYLOAD || status=1

echo "== the protocol as implemented (docs/FORMAT.md, csrc/): FORMAT_MD_FIXED passes; each earlier draft of its claim-range rules fails"
fm=(-DFORMAT_MD -DFORMAT_MD_NOTORN -DFORMAT_MD_CONFIRMED_HOLDER -DFORMAT_MD_RETRACT)
pan_flags=(-m100000 -w26)
verify FORMAT_MD_FIXED pass "${fm[@]}" || status=1
pan_flags=(-m100000)
verify FORMAT_MD_TORN fail -DFORMAT_MD -DFORMAT_MD_CONFIRMED_HOLDER -DFORMAT_MD_RETRACT || status=1   # 5.3 note: skips a live claim
verify FORMAT_MD_HOLDER fail -DFORMAT_MD -DFORMAT_MD_NOTORN -DFORMAT_MD_RETRACT || status=1        # 8.3: HOLD cleared under a live holder
verify FORMAT_MD_STALE fail -DFORMAT_MD -DFORMAT_MD_NOTORN -DFORMAT_MD_CONFIRMED_HOLDER || status=1 # 5.3: stale intended range: deadlock

if [ "${MODEL_FINE:-0}" = 1 ]; then
    echo "== finer-grained steps (MODEL_FINE=1; minutes, ~5 GB)"
    pan_cflags=(-w -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=8192)
    pan_flags=(-m100000 -w27)
    verify FINE pass -DFINE || status=1
    verify FORMAT_MD_FIXED_FINE pass "${fm[@]}" -DFINE || status=1
    pan_flags=(-m100000)
fi

echo "== coverage: each point must be reached"
pan_cflags=(-w -O1 -DSAFETY -DCOLLAPSE -DMEMLIM=4096)
cover_names=(
    ""
    "delivery of a second-lap frame"
    "padding skipped"
    "revoked frame skipped"
    "dead writer's claim reclaimed"
    "reclaim with two dead covering slots"
    "FrameAbandoned"
    "dead holder's HOLD cleared by a waiting writer"
    "reader crash and replacement"
    "tail CAS failure"
    "write timeout"
    "reader waits for a live writer"
    "final state, every frame delivered"
    "final state, both writers dead"
    "force-unblock loses the race to the commit"
    "re-loaded stamp valid (commit just before death)"
)
for n in $(seq 1 15); do
    verify "COVER_$n" "reach:${cover_names[$n]}" "-DCOVER=$n" || status=1
done

# -- broadcast.pml -----------------------------------------------------------

model="$here/broadcast.pml"
pan_cflags=(-w -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=4096)
pan_flags=(-m100000 -w24)
echo "== broadcast channels (broadcast.pml): tethered + lossy reader, one writer; the re-tether rule; two writers"
verify BCAST pass -DNF=4 || status=1                       # 1 writer x 4 frames, tethered + lossy reader
verify BCAST_L1 pass -DNF=4 -DL=1 || status=1               # one lap table entry: the tag check matters
verify BCAST_RETETHER pass -DNF=5 -DNO_LOSSY || status=1    # enough frames to untether, catch up, re-tether, be lapped
verify BCAST_W2 pass -DNW=2 -DNF=2 -DNO_LOSSY || status=1     # no writer laps another's unfinished claim
pan_flags=(-m100000)
echo "== broadcast: broken rules, each must fail"
verify BCAST_BUG_NO_SAFE_FROM fail -DNF=5 -DNO_LOSSY -DBUG_NO_SAFE_FROM || status=1       # re-tether trusts at once
verify BCAST_BUG_SAFE_FROM_FIRST fail -DNF=5 -DNO_LOSSY -DBUG_SAFE_FROM_FIRST || status=1 # TAIL loaded before TETHER = 1
verify BCAST_BUG_NO_VALIDATE fail -DNF=4 -DBUG_NO_VALIDATE || status=1                   # copies not checked against TAIL
verify BCAST_BUG_LAP_NO_TAG fail -DNF=4 -DL=1 -DBUG_LAP_NO_TAG || status=1               # lap entry of another lap used
verify BCAST_BUG_LOST_BY_CELLS fail -DNF=4 -DBUG_LOST_BY_CELLS || status=1               # loss counted in bytes, not frames
verify BCAST_NO_UNTETHER fail -DNF=4 -DNO_UNTETHER || status=1                           # a dead tethered reader: deadlock
verify BCAST_BUG_LAP_INFLIGHT fail -DNW=2 -DNF=2 -DNO_LOSSY -DBUG_LAP_INFLIGHT || status=1 # a writer laps another's unfinished claim

echo "== broadcast coverage: each point must be reached"
pan_cflags=(-w -O1 -DSAFETY -DCOLLAPSE -DMEMLIM=4096)
bcast_cover=(
    ""
    "a stopped tethered reader untethered"
    "re-tethered (safe_from loaded)"
    "the lossy reader counts a loss at a lap start"
    "an untethered reader resynchronised"
    "a copy found overwritten"
    "final state: the tethered reader read two laps, lost nothing"
    "a frame before safe_from validated and delivered"
    "a dead tethered reader untethered"
    "padding skipped"
)
for n in $(seq 1 9); do
    verify "BCAST_COVER_$n" "reach:${bcast_cover[$n]}" -DNF=4 "-DCOVER=$n" || status=1
done

echo "(runs kept in $work)"
if [ "$status" -ne 0 ]; then
    echo "run.sh: FAILED" >&2
fi
exit "$status"
