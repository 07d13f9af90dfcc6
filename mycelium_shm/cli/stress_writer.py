"""One writer process of ``mycelium-shm stress`` (run with ``python -m``).

    python -m mycelium_shm.cli.stress_writer NAME WRITER_ID FRAMES LOW HIGH MODE TIMEOUT

writes FRAMES self-checking payloads (:mod:`.payload`) of LOW..HIGH bytes,
with single writes, batches, zero-copy reservations or a mix (MODE).  A
write that finds no room for TIMEOUT seconds fails the writer, so writers
never outlive a reader that is gone.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence

from ..writer import ShmWriter
from .payload import MODES, make_payload, type_id_of


def write_frames(
    name: str, wid: int, count: int, low: int, high: int, mode: str, timeout: float
) -> None:
    rng = random.Random(wid)
    type_id = type_id_of(wid)
    with ShmWriter(name) as w:
        seq = 0
        while seq < count:
            how = mode if mode != "mixed" else rng.choice(MODES[:3])
            if how == "single":
                w.write(type_id, make_payload(wid, seq, rng.randint(low, high), rng), timeout)
                seq += 1
            elif how == "batch":
                n = min(rng.randint(1, 64), count - seq)
                batch = [
                    (type_id, make_payload(wid, seq + i, rng.randint(low, high), rng))
                    for i in range(n)
                ]
                if w.write_many(batch, timeout) != n:
                    raise RuntimeError(f"no room in the ring for {timeout:g} s")
                seq += n
            else:
                payload = make_payload(wid, seq, rng.randint(low, high), rng)
                with w.reserve(type_id, len(payload), timeout) as buf:
                    buf[:] = payload
                seq += 1


def main(argv: Sequence[str]) -> int:
    if len(argv) != 7 or argv[5] not in MODES:
        print("usage: stress_writer NAME WRITER_ID FRAMES LOW HIGH MODE TIMEOUT", file=sys.stderr)
        return 2
    name, wid, count, low, high, mode, timeout = argv
    try:
        write_frames(name, int(wid), int(count), int(low), int(high), mode, float(timeout))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # reported to the parent, which fails the run
        print(f"writer {wid}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
