"""Several writer processes into one channel, checked by the reader."""

from __future__ import annotations

from mycelium_shm import ShmReader
from mycelium_shm.cli.payload import check_payload

WRITERS = 4
FRAMES = 100_000


def test_four_writer_processes_lose_nothing(channel_name: str, procs) -> None:
    """4 processes x 100,000 frames of random sizes arrive complete, in order per writer, intact."""
    reader = ShmReader(channel_name, create=True, capacity=1 << 16)
    try:
        writers = [
            procs.start("writer", channel_name, str(i), str(FRAMES), "12", "600", "mixed")
            for i in range(WRITERS)
        ]
        next_seq = [0] * WRITERS
        total = 0
        while total < WRITERS * FRAMES:
            batch = reader.read_many(256, timeout=30)
            assert batch, f"stalled after {total} frames"
            for frame in batch:
                writer_id, seq = check_payload(frame.payload)
                assert frame.type_id == 1 + writer_id
                assert seq == next_seq[writer_id], (writer_id, seq, next_seq[writer_id])
                next_seq[writer_id] += 1
            total += len(batch)
        for proc in writers:
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err.decode()
            assert out.decode().strip() == "done"
        assert next_seq == [FRAMES] * WRITERS
        assert reader.try_read() is None
        stats = reader.stats()
        assert stats["frames_written"] == stats["frames_read"] == WRITERS * FRAMES
    finally:
        reader.close()
