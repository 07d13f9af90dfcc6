"""The ``json`` language: the intermediate model as ``schema.json``.

For tools in languages without a generator here: the messages, fields,
canonical types, fixed sizes and digest, as :func:`~.model_dict` builds them.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..protocol import Schema
from . import model_dict

__all__ = ["generate"]


def generate(schema: Schema, out_dir: Path, source: Path) -> list[Path]:
    """Write ``out_dir/schema.json``; return its path."""
    data = {"source": str(source), **model_dict(schema)}
    path = out_dir / "schema.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [path]
