"""The ``mycelium-shm`` command: look at, clean up and exercise channels.

    mycelium-shm ls [NAME...] [--json]
    mycelium-shm stat NAME [--interval S] [--count N] [--json]
    mycelium-shm tail NAME [--schema FILE] [--count N] [--timeout S] [--from-start] [--json]
    mycelium-shm cursor ls NAME [--json]
    mycelium-shm cursor rm NAME CURSOR [--json]
    mycelium-shm unblock NAME [--json]
    mycelium-shm rm NAME... [--force] [--json]
    mycelium-shm gc [NAME...] [--dry-run] [--json]
    mycelium-shm stress [--writers N] [--frames M] [--sizes A-B] [--capacity C] [--json]
    mycelium-shm record NAME -o FILE [--count N] [--duration S] [--json]
    mycelium-shm replay FILE --to NAME [--speed X|max] [--json]
    mycelium-shm bench [ARGS...] [--json]    (python -m bench from the source checkout)
    mycelium-shm codegen [ARGS...] [--json]  (python -m mycelium_shm.codegen)

Every subcommand takes ``--json``: its result as JSON on stdout.

Also ``python -m mycelium_shm``.  A mistake (bad name, missing or corrupt
channel, bad option) is one line on stderr, ``mycelium-shm: error: ...``,
and a non-zero exit status: 2 for a malformed command line, 1 otherwise,
130 after Ctrl-C.  One subcommand per module (``cmd_*.py``).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from typing import Optional

from .. import __version__
from ..errors import MyceliumError
from . import (
    cmd_bench,
    cmd_cursor,
    cmd_gc,
    cmd_ls,
    cmd_record,
    cmd_replay,
    cmd_stat,
    cmd_stress,
    cmd_sweep,
    cmd_tail,
    cmd_unblock,
)
from ._common import PROG, CliError, Parser, emit_json

__all__ = ["build_parser", "main"]


def _codegen(argv: Sequence[str]) -> int:
    """``codegen ARGS``; with ``--json`` (taken out of ARGS) the files written, or
    the languages of ``--list``, as one JSON object instead of lines."""
    from ..codegen import main as codegen_main

    words = list(argv)
    if "--json" not in words or "-h" in words or "--help" in words:
        return codegen_main(words)
    words = [w for w in words if w != "--json"]
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        status = codegen_main(words)
    lines = captured.getvalue().splitlines()
    key = "languages" if "--list" in words else "written"
    emit_json({"status": status, key: lines})
    return status


#: Subcommands whose arguments go, untouched, to another command line.
PASSTHROUGH: dict[str, Callable[[Sequence[str]], int]] = {
    "bench": cmd_bench.main,
    "codegen": _codegen,
}


def build_parser() -> Parser:
    """The argument parser of every subcommand but the pass-through ones."""
    parser = Parser(
        prog=PROG,
        description="Inspect, follow, unblock, clean up, record, replay and stress-test "
        "mycelium-shm channels.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    cmd_ls.add_parser(sub)
    cmd_stat.add_parser(sub)
    cmd_tail.add_parser(sub)
    cmd_cursor.add_parser(sub)
    cmd_unblock.add_parser(sub)
    cmd_gc.add_parsers(sub)
    cmd_stress.add_parser(sub)
    cmd_record.add_parser(sub)
    cmd_replay.add_parser(sub)
    cmd_sweep.add_parser(sub)
    sub.add_parser(
        "bench",
        help="run the benchmark suite (ARGS go to python -m bench; --json: a summary)",
    )
    sub.add_parser(
        "codegen",
        help="generate code from a schema (ARGS go to the generator; --json: files written)",
    )
    return parser


def _describe(exc: BaseException) -> str:
    """One line for an exception a user can cause."""
    if isinstance(exc, OSError) and not isinstance(exc, MyceliumError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        if words and words[0] in PASSTHROUGH:
            return PASSTHROUGH[words[0]](words[1:])
        parser = build_parser()
        try:
            args = parser.parse_args(words)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else 0
        if args.command is None:
            raise CliError("a COMMAND is required (see --help)", 2)
        return int(args.run(args))
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our output went away (| head): stop quietly.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except (MyceliumError, OSError, ValueError) as exc:
        print(f"{PROG}: error: {_describe(exc)}", file=sys.stderr)
        return 1
