"""What a sweep runs: services, a data source, a parameter grid, Monte Carlo paths.

Instances: the product of the grid's values (in the order the grid lists its
keys, the last key varying fastest) times ``paths``.  Instance ``i`` runs grid
point ``i // paths`` on path ``i % paths``; path ``p`` is generated from
``SeedSequence(seed, spawn_key=(p,))``, so every grid point sees the same
paths (common random numbers) and a path never depends on the executor.

Config file (TOML)::

    schema = "schema.toml"               # optional: message classes by name
    [sweep]
    seed = 42
    feed = "market_data"                 # the service given the bars (default: the first)
    periods_per_year = 252
    [data]
    kind = "gbm"                          # gbm | bootstrap | csv; the rest are its options
    bars = 2000
    [services.market_data]
    class = "sma:BarFeed"                # module:Class, modules found next to the file
    [services.strategy]
    class = "sma:SmaCross"
    config = { fast = 10, slow = 30 }
    [grid.strategy]                       # service -> parameter -> values
    fast = [5, 10, 20]
    slow = { start = 30, stop = 100, step = 10 }   # or a range
    [montecarlo]
    paths = 1000
    [report]
    metric = "sharpe"
    heatmap = ["strategy.fast", "strategy.slow"]
    top = 10

A mistake is a :class:`SweepConfigError`, one line naming the file, the line
and the key: ``sweep.toml:14: grid.strategy.fats: strategy (sma:SmaCross) has
no parameter 'fats' (parameters: fast, slow, size)``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from .data import Source, make_source

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ServiceDef", "SweepConfigError", "SweepSpec", "load_class", "load_config"]


class SweepConfigError(ValueError):
    """A bad sweep configuration; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class ServiceDef:
    """One service of an instance: its name, ``module:Class`` and base config."""

    name: str
    class_path: str
    config: Mapping[str, Any] = field(default_factory=dict)


def class_path_of(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def load_class(class_path: str, sys_paths: Sequence[str] = ()) -> type:
    """Import ``module:Class`` (``sys_paths`` are put first on ``sys.path`` once)."""
    for p in reversed(sys_paths):
        if p not in sys.path:
            sys.path.insert(0, p)
    module_name, sep, attr = class_path.partition(":")
    if not sep or not module_name or not attr:
        raise ImportError(f"{class_path!r} is not of the form module:Class")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise ImportError(f"{class_path} is not a class")
    return obj


def parameters_of(cls: type) -> Optional[list[str]]:
    """The keyword parameters of ``cls(...)``; None if it takes ``**kwargs``."""
    sig = inspect.signature(cls)
    names = []
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(p.name)
    return names


@dataclass(frozen=True, eq=False)
class SweepSpec:
    """A validated sweep (picklable: it is sent to every worker)."""

    services: tuple[ServiceDef, ...]
    source: Source
    feed: str
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    paths: int = 1
    seed: int = 0
    schema: Optional[str] = None
    sys_paths: tuple[str, ...] = ()
    periods_per_year: float = 252.0
    origin: str = "<api>"
    report: Mapping[str, Any] = field(default_factory=dict)

    @property
    def grid_size(self) -> int:
        return math.prod(len(v) for _, v in self.grid)

    @property
    def size(self) -> int:
        """The number of instances."""
        return self.grid_size * self.paths

    def instance(self, index: int) -> tuple[dict[str, Any], int]:
        """(parameters, path) of instance ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        point, path = divmod(index, self.paths)
        params: dict[str, Any] = {}
        for key, values in reversed(self.grid):
            point, k = divmod(point, len(values))
            params[key] = values[k]
        return dict(reversed(list(params.items()))), path

    def service_configs(self, params: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        """(name, class path, config) of every service with the grid point applied."""
        out = []
        for s in self.services:
            config = dict(s.config)
            prefix = s.name + "."
            for key, value in params.items():
                if key.startswith(prefix):
                    config[key[len(prefix) :]] = value
            out.append((s.name, s.class_path, config))
        return out

    def describe(self) -> dict[str, Any]:
        """Everything that determines the results, as JSON (for the digest and spec.json)."""
        return {
            "services": [[s.name, s.class_path, dict(s.config)] for s in self.services],
            "source": [type(self.source).__name__, repr(self.source)],
            "feed": self.feed,
            "grid": [[k, list(v)] for k, v in self.grid],
            "paths": self.paths,
            "seed": self.seed,
            "schema": self.schema,
            "periods_per_year": self.periods_per_year,
        }

    def digest(self) -> str:
        text = json.dumps(self.describe(), sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- building -----------------------------------------------------------

    @classmethod
    def create(
        cls,
        services: Mapping[str, Any],
        source: Source,
        *,
        grid: Optional[Mapping[str, Sequence[Any]]] = None,
        paths: int = 1,
        seed: int = 0,
        feed: Optional[str] = None,
        schema: Optional[Union[str, Path]] = None,
        sys_paths: Sequence[str] = (),
        periods_per_year: float = 252.0,
        report: Optional[Mapping[str, Any]] = None,
    ) -> SweepSpec:
        """The Python API: ``services`` maps names to a class, a ``module:Class``
        string, or ``(class, config)``; ``grid`` maps ``"service.param"`` to values."""
        defs = []
        for name, value in services.items():
            config: Mapping[str, Any] = {}
            if isinstance(value, tuple):
                value, config = value
            path = value if isinstance(value, str) else class_path_of(value)
            defs.append(ServiceDef(name, path, dict(config)))
        spec = cls(
            services=tuple(defs),
            source=source,
            feed=feed or (defs[0].name if defs else ""),
            grid=tuple((k, tuple(v)) for k, v in (grid or {}).items()),
            paths=paths,
            seed=seed,
            schema=None if schema is None else str(schema),
            sys_paths=tuple(sys_paths),
            periods_per_year=periods_per_year,
            report=dict(report or {}),
        )
        spec.validate()
        return spec

    def validate(self, where: Optional[Where] = None) -> None:
        """Import every class and check every parameter; SweepConfigError if wrong."""
        w = where or Where(self.origin, None)
        if not self.services:
            raise w.error(("services",), "no services")
        names = [s.name for s in self.services]
        if self.feed not in names:
            raise w.error(("sweep", "feed"), f"no service {self.feed!r} (services: {', '.join(names)})")
        if not isinstance(self.paths, int) or isinstance(self.paths, bool) or self.paths < 1:
            raise w.error(("montecarlo", "paths"), f"must be a positive integer, not {self.paths!r}")
        if self.paths > 1 and not getattr(self.source, "random", True):
            raise w.error(("montecarlo", "paths"), "the data source is not random (use kind = \"bootstrap\")")
        params: dict[str, Optional[list[str]]] = {}
        for s in self.services:
            key = ("services", s.name, "class")
            try:
                klass = load_class(s.class_path, self.sys_paths)
            except Exception as exc:
                raise w.error(key, f"cannot import {s.class_path!r}: {type(exc).__name__}: {exc}") from None
            try:
                params[s.name] = parameters_of(klass)
            except (TypeError, ValueError):
                params[s.name] = None
            allowed = params[s.name]
            if allowed is not None:
                if s.name == self.feed and "bars" not in allowed:
                    raise w.error(key, f"the feed {s.class_path} takes no 'bars' parameter")
                for k in s.config:
                    if k not in allowed:
                        raise w.error(
                            ("services", s.name, "config", k),
                            f"{s.name} ({s.class_path}) has no parameter {k!r}"
                            f" (parameters: {', '.join(allowed)})",
                        )
        for key, values in self.grid:
            service, dot, param = key.partition(".")
            path = ("grid", service, param)
            if not dot or service not in params:
                raise w.error(path[:2], f"no service {service!r} (services: {', '.join(names)})")
            allowed = params[service]
            if allowed is not None and param not in allowed:
                klass_path = next(s.class_path for s in self.services if s.name == service)
                raise w.error(
                    path,
                    f"{service} ({klass_path}) has no parameter {param!r}"
                    f" (parameters: {', '.join(allowed)})",
                )
            if len(values) == 0:
                raise w.error(path, "empty list of values")


class Where:
    """Names the file, line and key of a config mistake."""

    def __init__(self, origin: str, text: Optional[str]) -> None:
        self.origin = origin
        self.lines: Any = None
        if text is not None:
            from ..bus.topology import _Lines

            self.lines = _Lines(text)

    def error(self, key: Sequence[str], problem: str) -> SweepConfigError:
        line = self.lines.of(*key) if self.lines is not None else None
        at = f"{self.origin}:{line}" if line else self.origin
        return SweepConfigError(f"{at}: {'.'.join(key)}: {problem}")


_TOP = {"schema", "sweep", "data", "services", "grid", "montecarlo", "report"}
_SWEEP_KEYS = {"seed", "feed", "periods_per_year"}
_SERVICE_KEYS = {"class", "config"}
_REPORT_KEYS = {"metric", "heatmap", "top", "bins"}


def _values(where: Where, key: tuple[str, ...], raw: Any) -> tuple[Any, ...]:
    if isinstance(raw, list):
        return tuple(raw)
    if isinstance(raw, dict):
        unknown = set(raw) - {"start", "stop", "step", "num"}
        if unknown or "start" not in raw or "stop" not in raw:
            raise where.error(key, "a range is { start, stop, step } or { start, stop, num }")
        start, stop = raw["start"], raw["stop"]
        if "num" in raw:
            num = raw["num"]
            if not isinstance(num, int) or num < 0:
                raise where.error(key, f"num must be a non-negative integer, not {num!r}")
            if num == 1:
                return (start,)
            return tuple(start + (stop - start) * i / (num - 1) for i in range(num))
        step = raw.get("step", 1)
        if not step:
            raise where.error(key, "step must not be 0")
        out = []
        x = start
        while (x <= stop) if step > 0 else (x >= stop):
            out.append(x)
            x = start + step * len(out)
        return tuple(out)
    raise where.error(key, f"expected a list of values or a range, not {raw!r}")


def load_config(path: Union[str, Path]) -> SweepSpec:
    """Parse and validate a sweep config file (see the module docstring)."""
    p = Path(path)
    origin = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepConfigError(f"{origin}: cannot read the file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepConfigError(f"{origin}: not valid TOML: {exc}") from None
    w = Where(origin, text)
    base = p.resolve().parent

    def table(key: str, allowed: Optional[set[str]] = None) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise w.error((key,), "must be a table")
        if allowed is not None:
            for k in value:
                if k not in allowed:
                    raise w.error((key, k), f"unknown key (known: {', '.join(sorted(allowed))})")
        return value

    for k in data:
        if k not in _TOP:
            raise w.error((k,), f"unknown key (known: {', '.join(sorted(_TOP))})")
    sweep = table("sweep", _SWEEP_KEYS)
    seed = sweep.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise w.error(("sweep", "seed"), f"must be a non-negative integer, not {seed!r}")
    ppy = sweep.get("periods_per_year", 252)
    if not isinstance(ppy, (int, float)) or ppy <= 0:
        raise w.error(("sweep", "periods_per_year"), f"must be a positive number, not {ppy!r}")

    services_t = table("services")
    if not services_t:
        raise w.error(("services",), "no services")
    defs = []
    for name, body in services_t.items():
        if not isinstance(body, dict):
            raise w.error(("services", name), "must be a table")
        for k in body:
            if k not in _SERVICE_KEYS:
                raise w.error(("services", name, k), "unknown key (known: class, config)")
        if "class" not in body or not isinstance(body["class"], str):
            raise w.error(("services", name, "class"), 'missing (class = "module:Class")')
        config = body.get("config", {})
        if not isinstance(config, dict):
            raise w.error(("services", name, "config"), "must be a table")
        defs.append(ServiceDef(name, body["class"], config))

    data_t = table("data")
    options = dict(data_t)
    kind = options.pop("kind", "gbm")
    try:
        source = make_source(kind, options, base)
    except KeyError as exc:
        bad = exc.args[0]
        if bad == "kind":
            raise w.error(("data", "kind"), f"unknown kind {kind!r} (kinds: bootstrap, csv, gbm)") from None
        raise w.error(("data", bad), f"unknown option for kind {kind!r}") from None
    except (TypeError, ValueError) as exc:
        raise w.error(("data",), str(exc)) from None

    grid: list[tuple[str, tuple[Any, ...]]] = []
    for service, params in table("grid").items():
        if not isinstance(params, dict):
            raise w.error(("grid", service), 'must be a table of parameters ([grid.service] param = [...])')
        for param, raw in params.items():
            grid.append((f"{service}.{param}", _values(w, ("grid", service, param), raw)))

    mc = table("montecarlo", {"paths"})
    paths = mc.get("paths", 1)
    report = table("report", _REPORT_KEYS)
    schema = data.get("schema")
    if schema is not None:
        if not isinstance(schema, str):
            raise w.error(("schema",), "must be a path")
        schema_path = (base / schema).resolve()
        if not schema_path.is_file():
            raise w.error(("schema",), f"no such file: {schema_path}")
        schema = str(schema_path)
        try:
            from ..protocol import Schema

            Schema.load(schema)
        except Exception as exc:
            raise w.error(("schema",), f"invalid schema: {exc}") from None
    spec = SweepSpec(
        services=tuple(defs),
        source=source,
        feed=sweep.get("feed", defs[0].name),
        grid=tuple(grid),
        paths=paths,
        seed=seed,
        schema=schema,
        sys_paths=(str(base),),
        periods_per_year=float(ppy),
        origin=origin,
        report=report,
    )
    spec.validate(w)
    heat = report.get("heatmap")
    if heat is not None:
        keys = [k for k, _ in grid]
        if not (isinstance(heat, list) and len(heat) == 2 and all(h in keys for h in heat)):
            raise w.error(("report", "heatmap"), f"must name two grid parameters (grid: {', '.join(keys)})")
    return spec
