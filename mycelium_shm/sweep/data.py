"""Market data for sweeps: seeded synthetic paths, a bootstrap of a series, CSV files.

Every source is a small frozen dataclass (so it pickles cheaply to worker
processes) with ``generate(rng) -> Bars``.  Random sources draw only from the
``numpy.random.Generator`` they are given, in a fixed order, so a path is a
pure function of its seed; :func:`path_rng` derives the generator of path
``p`` from the sweep's base seed with ``SeedSequence(base, spawn_key=(p,))``.
"""

from __future__ import annotations

import abc
import csv
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

__all__ = ["GBM", "Bars", "Bootstrap", "CsvSource", "Source", "load_csv", "make_source", "path_rng"]

DAY_NS = 86_400 * 1_000_000_000
EPOCH_NS = 1_700_000_000 * 1_000_000_000


def path_rng(base_seed: int, path: int) -> np.random.Generator:
    """The generator of Monte Carlo path ``path``: PCG64 seeded by (base seed, path)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(base_seed, spawn_key=(path,))))


@dataclass(frozen=True, eq=False)
class Bars:
    """OHLCV bars as NumPy arrays (``ts`` in ns since the epoch, the rest float64)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def rows(self) -> zip[tuple[Any, ...]]:
        """(i, ts, open, high, low, close, volume) per bar, as Python numbers (fast to iterate)."""
        return zip(
            range(len(self)),
            self.ts.tolist(),
            self.open.tolist(),
            self.high.tolist(),
            self.low.tolist(),
            self.close.tolist(),
            self.volume.tolist(),
        )

    @classmethod
    def from_close(
        cls,
        close: np.ndarray,
        s0: float,
        *,
        ts: Optional[np.ndarray] = None,
        wiggle: Optional[np.ndarray] = None,
        volume: Optional[np.ndarray] = None,
    ) -> Bars:
        """Bars whose open is the previous close; high/low stretched by ``wiggle`` (log units)."""
        n = close.shape[0]
        open_ = np.empty(n)
        open_[0] = s0
        open_[1:] = close[:-1]
        high = np.maximum(open_, close)
        low = np.minimum(open_, close)
        if wiggle is not None:
            high = high * np.exp(wiggle[0])
            low = low * np.exp(-wiggle[1])
        if ts is None:
            ts = EPOCH_NS + np.arange(n, dtype=np.int64) * DAY_NS
        if volume is None:
            volume = np.zeros(n)
        return cls(ts, open_, high, low, close, volume)


class Source(abc.ABC):
    """What a market data source provides: the bars of one path."""

    #: True if the bars depend on the generator (Monte Carlo paths make sense).
    random: bool = True

    @abc.abstractmethod
    def generate(self, rng: np.random.Generator) -> Bars:
        """The bars of one path, drawn from ``rng`` when the source is random."""


@dataclass(frozen=True)
class GBM(Source):
    """Geometric Brownian motion, with optional Merton jumps and regime switching.

    Per bar: ``log S(t+dt) - log S(t) = (mu - sigma^2/2) dt + sigma sqrt(dt) Z``
    plus, with ``jump_intensity`` (jumps per unit of time) > 0, a compound
    Poisson sum of normal log jumps ``N(jump_mean, jump_std^2)`` whose drift is
    compensated so ``E[S]`` keeps growing at ``mu``.  ``regimes`` is a list of
    ``[mu, sigma]`` pairs; the regime changes with probability ``switch_prob``
    per bar to another one chosen uniformly (the first regime starts).
    """

    bars: int = 2000
    s0: float = 100.0
    mu: float = 0.05
    sigma: float = 0.2
    dt: float = 1.0 / 252
    jump_intensity: float = 0.0
    jump_mean: float = 0.0
    jump_std: float = 0.0
    regimes: tuple[tuple[float, float], ...] = ()
    switch_prob: float = 0.0
    intrabar: float = 0.5
    random = True

    def __post_init__(self) -> None:
        if self.bars < 2:
            raise ValueError(f"bars must be at least 2, not {self.bars}")
        if self.sigma < 0 or self.s0 <= 0 or self.dt <= 0:
            raise ValueError("sigma must be >= 0, s0 and dt > 0")
        if not 0.0 <= self.switch_prob <= 1.0:
            raise ValueError(f"switch_prob must be in [0, 1], not {self.switch_prob}")
        object.__setattr__(self, "regimes", tuple(tuple(map(float, r)) for r in self.regimes))
        for r in self.regimes:
            if len(r) != 2:
                raise ValueError(f"a regime is [mu, sigma], not {list(r)}")

    def generate(self, rng: np.random.Generator) -> Bars:
        n, dt = self.bars, self.dt
        if self.regimes:
            k = len(self.regimes)
            switch = rng.random(n) < self.switch_prob
            jump = rng.integers(1, max(k, 2), n)  # how far to move when switching
            state = np.cumsum(np.where(switch, jump, 0)) % k
            params = np.asarray(self.regimes)
            mu, sigma = params[state, 0], params[state, 1]
        else:
            mu = np.full(n, self.mu)
            sigma = np.full(n, self.sigma)
        z = rng.standard_normal(n)
        logret = (mu - 0.5 * sigma**2) * dt + sigma * math.sqrt(dt) * z
        if self.jump_intensity > 0:
            lam = self.jump_intensity * dt
            count = rng.poisson(lam, n)
            size = count * self.jump_mean + np.sqrt(count) * self.jump_std * rng.standard_normal(n)
            kappa = math.exp(self.jump_mean + 0.5 * self.jump_std**2) - 1.0
            logret = logret + size - lam * kappa
        close = self.s0 * np.exp(np.cumsum(logret))
        wiggle = np.abs(rng.standard_normal((2, n))) * sigma * math.sqrt(dt) * self.intrabar
        volume = rng.integers(100, 10_000, n).astype(np.float64)
        return Bars.from_close(close, self.s0, wiggle=wiggle, volume=volume)


@dataclass(frozen=True)
class CsvSource(Source):
    """Bars (or ticks, one bar each) from a CSV file; the same bars for every path.

    Columns, by header name (case-insensitive): a time column (``timestamp``,
    ``time``, ``date``, ``datetime`` or ``ts``: integer ns/us/ms/s since the epoch,
    or ISO 8601), then ``open``, ``high``, ``low``, ``close``, ``volume`` for bars
    or ``price`` (and optional ``size``/``volume``) for ticks.
    """

    path: str
    random = False

    def generate(self, rng: np.random.Generator) -> Bars:
        return load_csv(self.path)


@dataclass(frozen=True)
class Bootstrap(Source):
    """Monte Carlo paths resampled from a series' log returns (moving-block bootstrap).

    ``series``: the prices (closes), or ``path``: a CSV file read as
    :class:`CsvSource`.  ``bars``: the length of each path (default: as long
    as the series); ``block``: consecutive returns drawn together (1: iid).
    """

    series: tuple[float, ...] = ()
    path: Optional[str] = None
    bars: Optional[int] = None
    block: int = 1
    s0: Optional[float] = None
    random = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "series", tuple(float(x) for x in self.series))
        if (self.path is None) == (not self.series):
            raise ValueError("a bootstrap needs exactly one of series or path")
        if self.block < 1:
            raise ValueError(f"block must be at least 1, not {self.block}")

    def _closes(self) -> np.ndarray:
        if self.path is not None:
            return load_csv(self.path).close
        return np.asarray(self.series, dtype=np.float64)

    def generate(self, rng: np.random.Generator) -> Bars:
        closes = self._closes()
        if closes.shape[0] < 2 or np.any(closes <= 0):
            raise ValueError("a bootstrap needs at least 2 positive prices")
        rets = np.diff(np.log(closes))
        n = self.bars or rets.shape[0]
        m = rets.shape[0]
        block = min(self.block, m)
        starts = rng.integers(0, m - block + 1, -(-n // block))
        idx = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]
        s0 = float(closes[0] if self.s0 is None else self.s0)
        return Bars.from_close(s0 * np.exp(np.cumsum(rets[idx])), s0)


_TIME_COLUMNS = ("timestamp", "time", "date", "datetime", "ts")


def _parse_time(text: str) -> int:
    text = text.strip()
    try:
        value = int(text)
    except ValueError:
        try:
            value_f = float(text)
        except ValueError:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
        value = int(value_f * 1e9) if value_f < 1e11 else int(value_f)
        return value
    for scale in (1_000_000_000, 1_000_000, 1_000):  # s, ms, us -> ns
        if abs(value) < 1e11 * 1_000_000_000 // scale:
            return value * scale
    return value


@lru_cache(maxsize=8)
def load_csv(path: Union[str, Path]) -> Bars:
    """Read a CSV of OHLCV bars or ticks (see :class:`CsvSource`); cached per process."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{path}: empty CSV file") from None
        rows = [r for r in reader if r and any(c.strip() for c in r)]
    col = {h: i for i, h in enumerate(header)}
    tcol = next((col[h] for h in _TIME_COLUMNS if h in col), None)
    if not rows:
        raise ValueError(f"{path}: no rows")

    def column(name: str) -> np.ndarray:
        i = col[name]
        try:
            return np.array([float(r[i]) for r in rows])
        except (ValueError, IndexError) as exc:
            raise ValueError(f"{path}: column {name!r}: {exc}") from None

    ts = (
        np.array([_parse_time(r[tcol]) for r in rows], dtype=np.int64)
        if tcol is not None
        else EPOCH_NS + np.arange(len(rows), dtype=np.int64) * DAY_NS
    )
    if {"open", "high", "low", "close"} <= col.keys():
        vol = column("volume") if "volume" in col else np.zeros(len(rows))
        return Bars(ts, column("open"), column("high"), column("low"), column("close"), vol)
    if "price" in col:
        price = column("price")
        size_col = "size" if "size" in col else "volume" if "volume" in col else None
        vol = column(size_col) if size_col else np.zeros(len(rows))
        return Bars(ts, price, price.copy(), price.copy(), price.copy(), vol)
    raise ValueError(f"{path}: needs columns open, high, low, close (bars) or price (ticks)")


_KINDS: dict[str, type] = {"gbm": GBM, "bootstrap": Bootstrap, "csv": CsvSource}


def make_source(kind: str, options: dict[str, Any], base: Optional[Path] = None) -> Source:
    """A source from its config (``kind`` = gbm, bootstrap or csv; the rest its fields).

    Relative ``path`` options are relative to ``base``.  Raises KeyError for an
    unknown kind or option (the option name as the key), ValueError for bad values.
    """
    cls = _KINDS.get(kind)
    if cls is None:
        raise KeyError("kind")
    names = {f for f in cls.__dataclass_fields__ if f != "random"}
    for key in options:
        if key not in names:
            raise KeyError(key)
    opts = dict(options)
    if base is not None and isinstance(opts.get("path"), str) and not Path(opts["path"]).is_absolute():
        opts["path"] = str((base / opts["path"]).resolve())
    if "regimes" in opts:
        opts["regimes"] = tuple(tuple(r) for r in opts["regimes"])
    if "series" in opts:
        opts["series"] = tuple(opts["series"])
    src: Source = cls(**opts)
    return src
