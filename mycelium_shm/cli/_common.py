"""What every subcommand shares: the one-line error, tables and numbers for people."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, Optional, TextIO

from ..channel import ChannelInfo, check_name
from ..errors import InvalidName

__all__ = [
    "PROG",
    "CliError",
    "HelpFormatter",
    "Parser",
    "channel_name",
    "emit_json",
    "format_age",
    "format_bytes",
    "format_count",
    "format_pid",
    "format_rate",
    "format_seconds",
    "hold_note",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "render_table",
    "stall_note",
    "stalled_writer",
    "unique_writers",
]

PROG = "mycelium-shm"


class CliError(Exception):
    """A failure the user can act on: printed as ``mycelium-shm: error: <text>``.

    ``status`` is the exit status: 2 for a malformed command line, 1 otherwise.
    """

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, ``(default: ...)``, unless the
    help text already names it or there is nothing to show (None, a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or isinstance(action, (argparse._HelpAction, argparse._VersionAction))
        ):
            return action.help
        if not action.option_strings and action.nargs not in ("?", "*"):
            return action.help
        if isinstance(default, (tuple, list)) and default:
            default = "-".join(map(str, default)) if len(default) == 2 else list(default)
        shown = str(default).replace("%", "%%")
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (a CliError), not usage + exit.

    Its help shows every default (:class:`HelpFormatter`); so do its subcommands'."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        raise CliError(f"{command}: {message}" if command else message, status=2)


def channel_name(text: str) -> str:
    """argparse type of a channel name: InvalidName surfaces as a one-line usage error."""
    try:
        check_name(text)
    except InvalidName as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a negative one is a one-line usage error)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def unique_writers(writers: Sequence[tuple[int, bool]]) -> list[tuple[int, bool]]:
    """Writer registry slots (one per writing thread) as one entry per pid, in
    first-seen order; a pid is alive if any of its slots says so."""
    alive: dict[int, bool] = {}
    for pid, ok in writers:
        alive[pid] = alive.get(pid, False) or ok
    return list(alive.items())


def emit_json(obj: Any, out: TextIO | None = None) -> None:
    """One JSON document on one line, flushed (scripts read it as it comes)."""
    stream = sys.stdout if out is None else out
    stream.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
    stream.flush()


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(n: float) -> str:
    """``512 B``, ``1.5 KiB``, ``64.0 MiB``."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_count(n: float) -> str:
    """``950``, ``12.3k``, ``4.56M``, ``1.20G`` (for rates and large counters)."""
    value = float(n)
    if abs(value) < 1000:
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    for unit, scale in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        if abs(value) < scale * 1000 or unit == "G":
            return f"{value / scale:.3g}{unit}"
    raise AssertionError("unreachable")


def format_rate(per_s: float, unit: str = "") -> str:
    """A per-second rate for people: ``12.3k/s``, ``1.5 MiB/s``."""
    if unit == "B":
        return f"{format_bytes(per_s)}/s"
    return f"{format_count(per_s)}/s"


def format_age(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``, ``4d03h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_seconds(seconds: float) -> str:
    """``0.4 s``, ``2.3 s``; from a minute on as :func:`format_age` (``3m05s``)."""
    return f"{max(0.0, seconds):.1f} s" if seconds < 60 else format_age(seconds)


def stalled_writer(info: ChannelInfo, now_ns: int) -> Optional[dict[str, Any]]:
    """The live writer whose unfinished frame holds the reader, as JSON data, or None.

    ``{"pid", "since_ns", "seconds"}``; ``seconds`` is None if the start is
    unknown.  The reader publishes the stall and clears it when it delivers
    a frame again, so the words can outlive the stall; they are shown only
    while it can still be one: the reader is alive, something is claimed at
    its head (head < tail), and that is not a frame already revoked (which
    the reader skips on its next read)."""
    head, tail = info.stats["head"], info.stats["tail"]
    if info.stalled_pid <= 0 or not (info.reader_pid and info.reader_alive):
        return None
    if head >= tail or info.hold_position == head:
        return None
    since = info.stalled_since_ns
    seconds = max(0.0, (now_ns - since) / 1e9) if since else None
    return {"pid": info.stalled_pid, "since_ns": since, "seconds": seconds}


def stall_note(stall: Optional[dict[str, Any]]) -> Optional[str]:
    """``stalled: writer 1234 for 2.3 s``, or None."""
    if stall is None:
        return None
    how_long = "" if stall["seconds"] is None else f" for {format_seconds(stall['seconds'])}"
    return f"stalled: writer {stall['pid']}{how_long} (the reader waits for its frame)"


def hold_note(position: Optional[int]) -> Optional[str]:
    """What a held revoked claim means, or None."""
    if position is None:
        return None
    return (
        f"hold: revoked frame at position {position} (writers do not reuse the ring "
        "from there until its writer returns or dies)"
    )


def format_pid(pid: int, alive: bool) -> str:
    """``-`` for no process, ``1234`` if it runs, ``1234(dead)`` if not."""
    if pid == 0:
        return "-"
    return str(pid) if alive else f"{pid}(dead)"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last cell of a row is not padded,
    so a short row (a name and an error, say) runs on past the columns."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[: len(headers)]):
            if i < len(row) - 1 or len(row) == len(headers):
                widths[i] = max(widths[i], len(cell))
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        cells.append(row[-1] if row else "")
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
