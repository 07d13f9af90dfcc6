"""Python classes for messages, generated from field names.

Every message class derives from :class:`Message` and has ``__slots__``, an
``__init__`` taking every field (positionally in declared order, or by
keyword; all required), ``__eq__`` (same class and equal fields, so a NaN
field makes a message unequal to itself, as NaN is; an array field, list or
NumPy array, equals another of the same length and equal elements, so a
decoded ``ndarray`` equals the list it was encoded from), ``__repr__`` of the form
``MarketTick(symbol='EURUSD', seq=1, ...)`` and ``__match_args__``.  Messages
are mutable and so unhashable.  ``__init__`` does not check values: the
encoder does, with messages that name the field.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

__all__ = ["Message", "generated_methods", "make_message_class"]


class Message:
    """Base class of every message class."""

    __slots__ = ()
    __message_fields__: ClassVar[tuple[str, ...]] = ()
    """Field names in declared order."""
    __match_args__: ClassVar[tuple[str, ...]] = ()

    if TYPE_CHECKING:
        # Generated subclasses take their fields, positionally or by keyword,
        # and have one attribute per field.
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...


def _fields_equal(mine: tuple[Any, ...], theirs: tuple[Any, ...]) -> bool:
    """Field-wise equality when a plain tuple comparison cannot answer.

    ``ndarray == x`` is element-wise, and the truth of a result of more (or
    fewer) than one element is a ValueError: such fields compare with
    ``numpy.array_equal`` (same shape, equal elements; NaN never equals).
    """
    np = sys.modules.get("numpy")
    for x, y in zip(mine, theirs):
        if x is y:
            continue
        if np is not None and (isinstance(x, np.ndarray) or isinstance(y, np.ndarray)):
            if not np.array_equal(x, y):
                return False
        elif not x == y:
            return False
    return True


def generated_methods(name: str, fields: tuple[str, ...]) -> dict[str, Callable[..., Any]]:
    """Source-generated ``__init__``, ``__repr__`` and ``__eq__`` for a class."""
    args = "".join(f", {f}" for f in fields)
    body = "".join(f"\n    self.{f} = {f}" for f in fields) or "\n    pass"
    reprs = ", ".join(f"{f}={{self.{f}!r}}" for f in fields)
    mine = "".join(f"self.{f}, " for f in fields)
    theirs = "".join(f"other.{f}, " for f in fields)
    src = f"""
def __init__(self{args}):{body}

def __repr__(self):
    return f"{name}({reprs})"

def __eq__(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    try:
        return ({mine}) == ({theirs})
    except ValueError:  # a NumPy array field: compared element-wise
        return _fields_equal(({mine}), ({theirs}))
"""
    ns: dict[str, Any] = {"_fields_equal": _fields_equal}
    exec(compile(src, f"<message {name}>", "exec"), ns)
    return {k: ns[k] for k in ("__init__", "__repr__", "__eq__")}


def make_message_class(
    name: str,
    fields: tuple[str, ...],
    doc: str = "",
    module: str = "mycelium_shm.protocol.generated",
    extra: Mapping[str, Any] | None = None,
) -> type[Message]:
    """A new :class:`Message` subclass with the given fields.

    ``extra`` adds class attributes (a decorated class keeps its methods).
    """
    ns: dict[str, Any] = dict(extra or {})
    ns.update(generated_methods(name, fields))
    ns["__slots__"] = fields
    ns["__match_args__"] = fields
    ns["__message_fields__"] = fields
    ns["__hash__"] = None
    ns["__module__"] = module
    ns["__doc__"] = doc or f"Message {name}."
    for meth in ("__init__", "__repr__", "__eq__"):
        ns[meth].__qualname__ = f"{name}.{meth}"
    return type(name, (Message,), ns)
