"""File modes protect channels, and a full /dev/shm is a clean error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, WORKERS

from mycelium_shm import ShmWriter

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")


@needs_root
def test_mode_0600_keeps_other_users_out(channel_name: str, procs) -> None:
    """Another user cannot attach to a 0600 channel (PermissionDenied); to a 0666
    one owned by root only with trust_foreign (ForeignChannel otherwise)."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    assert procs.run("attach-as-nobody", channel_name, "reader").strip() == "PermissionDenied"
    os.chmod(f"/dev/shm/mycelium.{channel_name}", 0o666)
    assert procs.run("attach-as-nobody", channel_name, "writer").strip() == "ForeignChannel"
    assert procs.run("attach-as-nobody", channel_name, "writer", "trust").strip() == "attached"


@needs_root
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_full_dev_shm_is_an_oserror_and_leaves_nothing(channel_name: str) -> None:
    """Creating a channel larger than the free space of /dev/shm raises ENOSPC and removes the object."""
    script = (
        f"mount -t tmpfs -o size=256k tmpfs /dev/shm && "
        f"{sys.executable} {WORKERS} create {channel_name} 1048576 && ls -A /dev/shm"
    )
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ChannelOSError 28 "), lines  # a MyceliumError and an OSError
    assert "No space left on device" in lines[0]
    assert lines[1:] == []  # the half-made object was unlinked
