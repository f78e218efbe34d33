"""Business series a user would configure for unit economics (orders, active users), simulated from traffic.

A scenario's optional ``business`` block (absent: :data:`DEFAULT_SERIES`)::

    business:
      seed: 7                    # optional; default: the scenario's seed
      series:
        - name: orders           # the unit, as insights name it ("cost per order")
          perCoreHour: 40        # units per CPU core-hour the traffic namespaces use
          namespaces: [shop, payments]   # whose CPU usage is the traffic; default: every namespace
          noise: 0.03            # relative day-to-day noise (seeded)
          dailyGrowth: 0.01      # growth per day beyond the traffic (0.01: +1% a day, e.g. better caching)

Each series is a :class:`SpendSeries` of units per UTC day (a day with less than 24 hours of usage is NaN),
aligned with the daily spend, so it works the same on a Simulation and on a snapshot (which carries no
scenario: the defaults with seed 0). Pure numpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..models.costs import UsageHours
from ..models.spend import SpendSeries
from .reading import Reader


@dataclass(frozen=True, slots=True)
class BusinessSeriesSpec:
    name: str
    per_core_hour: float
    namespaces: tuple[str, ...] = ()           # empty: all
    noise: float = 0.03
    daily_growth: float = 0.0


@dataclass(frozen=True, slots=True)
class BusinessSpec:
    series: tuple[BusinessSeriesSpec, ...] = field(default_factory=lambda: DEFAULT_SERIES)
    seed: int | None = None                    # None: the scenario's seed


DEFAULT_SERIES = (BusinessSeriesSpec("orders", 40.0), BusinessSeriesSpec("active_users", 12.0, noise=0.02))


def parse_business(data: Any, source: str) -> BusinessSpec | None:
    """Validate the ``business`` mapping; None when absent (the defaults apply). Errors name ``business.<key>``."""
    if data is None:
        return None
    obj = Reader(data, "business", source, {"seed", "series"})
    series = tuple(_series(item, path, source) for path, item in obj.items("series", required=True))
    names = [s.name for s in series]
    for i, name in enumerate(names):
        if name in names[:i]:
            obj.fail(f"duplicate series name {name!r}", f"series[{i}].name")
    return BusinessSpec(series, obj.get("seed", int, None))


def _series(data: Any, path: str, source: str) -> BusinessSeriesSpec:
    obj = Reader(data, path, source, {"name", "perCoreHour", "namespaces", "noise", "dailyGrowth"})
    name = obj.get("name", str)
    if not name.replace("_", "").replace("-", "").isalnum():
        obj.fail(f"a series name is letters, digits, '_' or '-', got {name!r}", "name")
    namespaces = obj.get("namespaces", list, [])
    if not all(isinstance(n, str) for n in namespaces):
        obj.fail("expected a list of namespace names", "namespaces")
    noise = obj.get("noise", float, 0.03, low=0.0)
    if noise > 0.5:
        obj.fail(f"must be between 0 and 0.5, got {noise}", "noise")
    growth = obj.get("dailyGrowth", float, 0.0, low=-0.5)
    if growth > 0.5:
        obj.fail(f"must be between -0.5 and 0.5, got {growth}", "dailyGrowth")
    return BusinessSeriesSpec(name, obj.get("perCoreHour", float, low=0.0), tuple(namespaces), noise, growth)


def business_series(usage: UsageHours, spec: BusinessSpec | None = None, *, seed: int = 0) -> dict[str, SpendSeries]:
    """Units per UTC day of each configured series, correlated with the traffic (CPU usage) of its namespaces."""
    spec = spec or BusinessSpec()
    rng = np.random.default_rng(spec.seed if spec.seed is not None else seed)
    days = usage.hours // 86400
    if len(days) == 0:
        return {}
    first = int(days[0])
    index = (days - first).astype(int)
    n_days = int(index[-1]) + 1
    hours_per_day = np.bincount(index, minlength=n_days)
    out = {}
    for s in spec.series:
        rows = [i for i, c in enumerate(usage.containers) if not s.namespaces or c.namespace in s.namespaces]
        per_hour = np.nansum(usage.cpu_usage[rows], axis=0) if rows else np.zeros(len(days))
        traffic = np.bincount(index, weights=per_hour, minlength=n_days)       # core-hours per day
        trend = (1.0 + s.daily_growth) ** np.arange(n_days)
        units = s.per_core_hour * traffic * trend * np.clip(1.0 + s.noise * rng.standard_normal(n_days), 0.0, None)
        units = np.where(hours_per_day == 24, np.round(units), np.nan)
        out[s.name] = SpendSeries(datetime.fromtimestamp(first * 86400, UTC).date(), units)
    return out
