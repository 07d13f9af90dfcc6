"""``mycelium-shm rm NAME...`` and ``mycelium-shm gc``: remove channels.

``rm`` removes the channels named, but refuses (one error line naming the
live pids) a channel whose creator, reader or a writer is alive, or that
cannot be inspected, unless ``--force``.

``gc`` removes a channel only when every process it knows of is dead: the
creator, the reader and each writer in the registry (pid and start time, so
a reused pid does not count as alive), and no process maps the object (a
peer that found no registry slot, or a ``tail``).  A channel that cannot be
inspected (corrupt, foreign, still being created) is kept: nothing says who
uses it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional

from ..channel import (
    OBJECT_PREFIX,
    SHM_DIR,
    ChannelInfo,
    display_name,
    exists,
    inspect,
    list_channels,
    unlink,
)
from ..errors import ChannelNotFound, MyceliumError
from ._common import channel_name, emit_json, format_pid, render_table, unique_writers

__all__ = ["add_parsers", "live_processes", "mapping_pids", "run_gc", "run_rm"]

_DELETED = " (deleted)"


def add_parsers(sub: Any) -> None:
    rm = sub.add_parser(
        "rm",
        help="remove channels",
        description="Remove channels by name.  A channel whose creator, reader or a writer "
        "is still alive is refused (one error line naming the live pids) unless --force; "
        "so is one that cannot be inspected (corrupt, still being created).  Attached "
        "processes keep their mapping of a removed channel.",
    )
    rm.add_argument("names", nargs="+", metavar="NAME", type=channel_name)
    rm.add_argument("--force", action="store_true", help="remove even channels with live processes")
    rm.add_argument("--json", action="store_true", help="one JSON array of outcomes")
    rm.set_defaults(run=run_rm)

    gc = sub.add_parser(
        "gc",
        help="remove channels whose processes are all dead",
        description="Remove every channel (or the NAMEs given) whose creator, reader and "
        "writers are all dead and that no process maps.  A channel in use is never removed.",
    )
    gc.add_argument(
        "names", nargs="*", metavar="NAME", type=channel_name, help="only these channels"
    )
    gc.add_argument("--dry-run", action="store_true", help="say what would be removed")
    gc.add_argument("--json", action="store_true", help="one JSON array of decisions")
    gc.set_defaults(run=run_gc)


def live_processes(info: ChannelInfo, ignore_pid: int = 0) -> list[tuple[str, int]]:
    """(role, pid) of every registered process of a channel that is alive, each
    pid once per role (writers have a registry slot per writing thread)."""
    live: list[tuple[str, int]] = []
    if info.creator_alive and info.creator_pid and info.creator_pid != ignore_pid:
        live.append(("creator", info.creator_pid))
    if info.reader_pid and info.reader_alive:
        live.append(("reader", info.reader_pid))
    live += [("writer", pid) for pid, ok in unique_writers(info.writers) if ok]
    return live


def _rm_one(name: str, force: bool) -> dict[str, Any]:
    """Remove one channel; its outcome (``error`` is the one-line reason of a failure)."""
    outcome: dict[str, Any] = {"name": name, "action": "removed"}
    if not exists(name):
        return {"name": name, "action": "missing", "error": f"no channel named {name!r}"}
    if not force:
        try:
            info = inspect(name)
        except (MyceliumError, OSError) as exc:
            return {
                "name": name,
                "action": "refused",
                "error": f"cannot remove {name!r}: cannot inspect it "
                f"({type(exc).__name__}: {exc}); --force removes it anyway",
            }
        # The creator entry of the process running rm does not hold the channel:
        # it asked for the removal (a program calling main(["rm", ...])).
        live = live_processes(info, ignore_pid=os.getpid())
        if live:
            pids = sorted({pid for _, pid in live})
            roles = ", ".join(f"{role} {pid}" for role, pid in live)
            return {
                "name": name,
                "action": "refused",
                "live": [{"role": role, "pid": pid} for role, pid in live],
                "error": f"channel {name!r} is in use by live pid{'s' if len(pids) > 1 else ''} "
                f"{', '.join(map(str, pids))} ({roles}); --force removes it anyway",
            }
    try:
        unlink(name)
    except ChannelNotFound:
        return {"name": name, "action": "missing", "error": f"no channel named {name!r}"}
    except (MyceliumError, OSError) as exc:
        return {"name": name, "action": "error", "error": f"cannot remove {name!r}: {exc}"}
    return outcome


def run_rm(args: argparse.Namespace) -> int:
    outcomes = [_rm_one(name, args.force) for name in args.names]
    for outcome in outcomes:
        if "error" in outcome:
            print(f"mycelium-shm: error: {outcome['error']}", file=sys.stderr)
        elif not args.json:
            print(f"removed {outcome['name']}")
    if args.json:
        emit_json(outcomes)
    return 1 if any("error" in o for o in outcomes) else 0


def mapping_pids() -> dict[str, set[int]]:
    """Channel name -> pids of the processes that map its object now.

    Read from /proc/PID/maps; a process whose maps we may not read (another
    user's, without privileges) is not seen, so the registry check still matters.
    """
    prefix = f"{SHM_DIR}/{OBJECT_PREFIX}"
    found: dict[str, set[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/maps", encoding="utf-8", errors="surrogateescape") as f:
                lines = f.readlines()
        except OSError:  # gone, or not ours to read
            continue
        for line in lines:
            parts = line.rstrip("\n").split(maxsplit=5)
            if len(parts) < 6 or not parts[5].startswith(prefix):
                continue
            path = parts[5]
            if path.endswith(_DELETED):
                continue  # an unlinked object, not the one the name points to now
            found.setdefault(path[len(prefix) :], set()).add(int(entry))
    return found


def _verdict(name: str, mapped: dict[str, set[int]]) -> tuple[bool, str]:
    """(removable, reason) for one channel."""
    try:
        info = inspect(name)
    except (MyceliumError, OSError) as exc:
        return False, f"cannot inspect ({type(exc).__name__}: {exc})"
    alive = [f"{role} {pid}" for role, pid in live_processes(info)]
    if alive:
        return False, "in use: " + ", ".join(alive)
    if name in mapped:
        return False, "mapped by pid " + ", ".join(map(str, sorted(mapped[name])))
    dead = [f"creator {format_pid(info.creator_pid, False)}"]
    if info.reader_pid:
        dead.append(f"reader {format_pid(info.reader_pid, False)}")
    dead += [f"writer {format_pid(pid, False)}" for pid, _ in unique_writers(info.writers)]
    return True, "all processes dead: " + ", ".join(dead)


def run_gc(args: argparse.Namespace) -> int:
    names = args.names or list_channels()
    mapped = mapping_pids()
    decisions: list[dict[str, Any]] = []
    status = 0
    for name in names:
        if args.names and not exists(name):
            print(f"mycelium-shm: error: no channel named {name!r}", file=sys.stderr)
            status = 1
            continue
        removable, reason = _verdict(name, mapped)
        action = "kept"
        error: Optional[str] = None
        if removable and args.dry_run:
            action = "would remove"
        elif removable:
            # Look again just before removing: a process may have attached since.
            removable, reason = _verdict(name, mapping_pids())
            if removable:
                try:
                    unlink(name)
                    action = "removed"
                except ChannelNotFound:
                    action, reason = "gone", "removed by someone else"
                except (MyceliumError, OSError) as exc:
                    error = str(exc)
                    status = 1
        # A name that is not UTF-8 (an odd object in /dev/shm) is shown
        # escaped: it can be printed and JSON-encoded.
        decision = {"name": display_name(name), "action": action, "reason": reason}
        if error is not None:
            decision["error"] = error
        decisions.append(decision)
    if args.json:
        emit_json(decisions)
        return status
    if not decisions:
        print("no channels")
        return status
    rows = [[d["action"], d["name"], d.get("error") or d["reason"]] for d in decisions]
    print(render_table(("ACTION", "NAME", "WHY"), rows))
    return status
