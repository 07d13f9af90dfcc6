"""The schema files that ship with the package (``schemas/*.toml`` of the checkout).

>>> from mycelium_shm import Schema, schemas
>>> schema = Schema.load(schemas.path("trading"))

A wheel carries copies made at build time (setup.py copies the checkout's
``schemas/*.toml`` into this package); in a source checkout or an editable
install the canonical files in ``schemas/`` are used instead, so there is one
file to edit.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["names", "path"]

_CHECKOUT = Path(__file__).resolve().parents[2] / "schemas"


def _packaged() -> Path:
    return Path(str(resources.files(__name__)))


def path(name: str = "trading") -> Path:
    """The file of schema ``name`` (e.g. ``"trading"``); FileNotFoundError if there is none."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not a schema name: {name!r}")
    for where in (_packaged(), _CHECKOUT):
        candidate = where / f"{name}.toml"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no schema {name!r}: known schemas are {', '.join(names()) or 'none'}")


def names() -> list[str]:
    """The names of the schemas available, sorted."""
    found = {
        p.stem for where in (_packaged(), _CHECKOUT) if where.is_dir() for p in where.glob("*.toml")
    }
    return sorted(found)
