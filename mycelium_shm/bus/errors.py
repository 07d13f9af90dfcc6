"""Errors of the message bus.

They join the package's one exception family: each derives from
:class:`mycelium_shm.errors.MyceliumError`, and from a builtin where one says
the same thing.
"""

from __future__ import annotations

from pathlib import Path

from mycelium_shm.errors import Full, MyceliumError

__all__ = ["BusClosed", "SubscriberOverflow", "TopologyError", "TransportError"]


class BusClosed(MyceliumError, RuntimeError):
    """The bus, subscriber or link was closed; it takes no more messages."""


class SubscriberOverflow(Full):
    """A subscriber's queue was full and its overflow policy is ``RAISE``."""


class TransportError(MyceliumError, ConnectionError):
    """A socket peer broke the framing protocol or the connection failed for good."""


class TopologyError(MyceliumError, ValueError):
    """A topology file is invalid.

    ``str(error)`` reads ``"<path>:<line>: <problem>"``; the parts are also
    available as :attr:`path`, :attr:`line` (1-based, ``None`` when the problem
    belongs to no single line) and :attr:`problem`.
    """

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")
