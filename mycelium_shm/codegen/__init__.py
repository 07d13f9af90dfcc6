"""Code generators: a schema in, source code for another language out.

    python -m mycelium_shm.codegen --lang rust|ocaml|json SCHEMA.toml -o DIR [--standalone]

(``--standalone`` is passed on as ``standalone=True`` to a generator that
takes it: Rust code for a crate of one's own, see ``rust.py``.)

Each language lives in a module of this package (``rust.py``, ``ocaml.py``,
``json_model.py``...) listed in :data:`LANGUAGES`, imported only when used.  The
module defines one function::

    def generate(schema: Schema, out_dir: Path, source: Path) -> list[Path]

which writes its files under ``out_dir`` (created beforehand) and returns
their paths.  ``source`` is the schema file it came from (for a "generated
from" header).  Generators read the intermediate model, never the TOML:

- ``schema.messages``: tuple of :class:`~mycelium_shm.protocol.MessageDef`
  in file order, each with ``name``, ``type_id``, ``doc``, ``fixed_size``
  (payload width if constant, else None) and ``fields``;
- each :class:`~mycelium_shm.protocol.Field` has ``name``, ``doc`` and
  ``type``, a :class:`~mycelium_shm.protocol.FieldType` with ``kind`` (one of
  ``scalar str bytes fixed_bytes array message``), ``canonical`` (the type
  string), ``scalar`` (a :class:`~mycelium_shm.protocol.Scalar`: ``name``,
  ``size``, ``kind`` bool/int/float, ``min``, ``max``; for scalars and array
  elements), ``length`` (N of ``bytes[N]``) and ``message`` (nested name);
- ``schema.model.by_name`` / ``by_id`` for lookups, ``schema.digest`` (32
  bytes) and ``schema.model.canonical_text()``.

:func:`model_dict` gives the same model as plain JSON-ready data (the
``json`` language writes it to ``schema.json``).  Third-party code can add a
language with :func:`register`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import MyceliumError
from ..protocol import Schema

__all__ = ["LANGUAGES", "Generator", "get_generator", "main", "model_dict", "register"]

Generator = Callable[[Schema, Path, Path], list[Path]]
"""generate(schema, out_dir, source) -> written paths."""

#: Language name -> module defining ``generate``, or the function itself.
LANGUAGES: dict[str, str | Generator] = {
    "rust": "mycelium_shm.codegen.rust",
    "ocaml": "mycelium_shm.codegen.ocaml",
    "json": "mycelium_shm.codegen.json_model",
}


def register(lang: str, generator: str | Generator) -> None:
    """Add or replace a language: a module name (with ``generate``) or a function."""
    LANGUAGES[lang] = generator


def get_generator(lang: str) -> Generator:
    """The generate function of ``lang``; LookupError if unknown or not installed."""
    try:
        entry = LANGUAGES[lang]
    except KeyError:
        raise LookupError(
            f"unknown language {lang!r} (known: {', '.join(sorted(LANGUAGES))})"
        ) from None
    if not isinstance(entry, str):
        return entry
    try:
        module = importlib.import_module(entry)
    except ModuleNotFoundError as e:
        if e.name != entry:
            raise
        raise LookupError(f"language {lang!r}: its generator {entry} is not installed") from None
    gen = getattr(module, "generate", None)
    if not callable(gen):
        raise LookupError(f"language {lang!r}: {entry} has no generate() function")
    return gen  # type: ignore[no-any-return]


def model_dict(schema: Schema) -> dict[str, Any]:
    """The intermediate model as JSON-ready data (documented in docs/FORMAT.md (Part 2))."""
    messages = []
    for m in schema.messages:
        fields = []
        for f in m.fields:
            t = f.type
            fields.append(
                {
                    "name": f.name,
                    "doc": f.doc,
                    "type": t.canonical,
                    "kind": t.kind,
                    "scalar": t.scalar.name if t.scalar else None,
                    "length": t.length,
                    "message": t.message,
                    "fixed_size": (
                        schema.model.by_name[t.message].fixed_size
                        if t.message is not None
                        else t.fixed_size
                    ),
                }
            )
        messages.append(
            {
                "name": m.name,
                "type_id": m.type_id,
                "doc": m.doc,
                "fixed_size": m.fixed_size,
                "fields": fields,
            }
        )
    return {
        "digest": schema.digest_hex,
        "canonical": schema.model.canonical_text(),
        "messages": messages,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mycelium_shm.codegen",
        description="Generate message types and codecs for another language from a schema.",
    )
    p.add_argument("--lang", help="target language: " + ", ".join(sorted(LANGUAGES)))
    p.add_argument("--list", action="store_true", help="list the languages and exit")
    p.add_argument("schema", nargs="?", type=Path, help="schema TOML file")
    p.add_argument("-o", "--out", type=Path, help="output directory (created if missing)")
    p.add_argument(
        "--standalone",
        action="store_true",
        default=None,
        help="rust: code for a crate of one's own (mod.rs only, no test helpers); "
        "the default for any directory outside the mycelium-shm crate",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (0 ok, 1 error, 2 usage)."""
    p = _parser()
    args = p.parse_args(argv)
    if args.list:
        for lang in sorted(LANGUAGES):
            print(lang)
        return 0
    if args.lang is None or args.schema is None or args.out is None:
        p.print_usage(sys.stderr)
        print(f"{p.prog}: error: --lang, SCHEMA and -o are required", file=sys.stderr)
        return 2
    try:
        gen = get_generator(args.lang)
        schema = Schema.load(args.schema)
        args.out.mkdir(parents=True, exist_ok=True)
        if args.standalone:
            if "standalone" not in inspect.signature(gen).parameters:
                raise LookupError(f"language {args.lang!r} has no --standalone option")
            written = gen(schema, args.out, args.schema, standalone=True)  # type: ignore[call-arg]
        else:
            written = gen(schema, args.out, args.schema)
    except (LookupError, MyceliumError, OSError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0
