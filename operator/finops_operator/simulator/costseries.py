"""Daily cost series for forecast and anomaly benchmarks: one family of spend behaviour each, seeded, with
injected anomalies and their labels.

    s = cost_series("weekly", days=178, seed=3)     # CostSeries
    s.series                                         # SpendSeries: what was spent (anomalies included)
    s.clean                                          # the same days without the injected anomalies
    s.labels                                         # [Label(start, end, kind)]: what a detector should find
    s.label_mask()                                   # bool per day

The shape comes from the traffic patterns of :mod:`.patterns` (steady, weekend, growth, decline, viral,
launch, migration, multitenant) rendered hourly and summed per day, times a daily price in USD; calendar
effects the patterns lack (month-end batches, holidays) are added here. Events (a launch, a level shift, a
viral jump, a migration) happen between 40% and 70% of the window. Anomalies are spikes (x1.6-3, one or two
days) and dips (x0.3-0.6, one day) at random days after the first two weeks; a level shift or viral jump is
labelled too (kind ``level-shift`` / ``spike`` on its first day): the issue wants it alerted once.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Callable

import numpy as np

from ..models.spend import SpendSeries
from .patterns import render

FAMILIES = ("steady", "weekly", "month-end", "growth", "decline", "level-shift", "viral", "launch", "migration",
            "multi-tenant", "holidays", "noisy")


@dataclass(frozen=True, slots=True)
class Label:
    start: date
    end: date                      # inclusive
    kind: str                      # "spike" | "dip" | "level-shift"


@dataclass(frozen=True, slots=True)
class CostSeries:
    family: str
    seed: int
    series: SpendSeries
    clean: np.ndarray
    labels: list[Label] = field(default_factory=list)

    def label_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.clean), dtype=bool)
        for label in self.labels:
            mask[(label.start - self.series.start).days:(label.end - self.series.start).days + 1] = True
        return mask


@dataclass(frozen=True, slots=True)
class _Shape:
    pattern: str
    params: dict[str, float]
    noise: float = 0.04                            # relative daily noise (standard deviation)
    event: str | None = None                       # label the event day as this kind (params["at"] is the day)
    extra: Callable[[np.ndarray, list[date], np.random.Generator], np.ndarray] | None = None


def _month_end(values: np.ndarray, days: list[date], rng: np.random.Generator) -> np.ndarray:
    """Batch jobs on the last two days of every month: +60-100% of a normal day."""
    boost = rng.uniform(0.6, 1.0)
    last_two = np.array([(d + timedelta(days=2)).month != d.month for d in days])
    return values * np.where(last_two, 1.0 + boost, 1.0)


def _us_holidays(year: int) -> set[date]:
    def nth(month: int, weekday: int, n: int) -> date:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last_may = date(year, 5, 31) - timedelta(days=(date(year, 5, 31).weekday()) % 7)
    thanksgiving = nth(11, 3, 4)
    return {date(year, 1, 1), nth(1, 0, 3), nth(2, 0, 3), last_may, date(year, 7, 4), nth(9, 0, 1),
            thanksgiving, thanksgiving + timedelta(days=1), date(year, 12, 24), date(year, 12, 25),
            date(year, 12, 26), date(year, 12, 31)}


def _holidays(values: np.ndarray, days: list[date], rng: np.random.Generator) -> np.ndarray:
    """US holidays (and the Friday after Thanksgiving, Christmas week): developer clusters idle at 50-70%."""
    off = set().union(*(_us_holidays(y) for y in {d.year for d in days}))
    factor = rng.uniform(0.5, 0.7)
    return values * np.array([factor if d in off else 1.0 for d in days])


def _shapes(rng: np.random.Generator, days: int) -> dict[str, _Shape]:
    at = float(rng.uniform(0.4, 0.7))
    weekend = float(rng.uniform(0.5, 0.8))
    week = {"weekendFactor": weekend}
    return {
        "steady": _Shape("steady", {}, noise=0.03),
        "weekly": _Shape("weekend", week),
        "month-end": _Shape("weekend", {"weekendFactor": 0.85}, extra=_month_end),
        "growth": _Shape("growth", {"endFactor": float(rng.uniform(1.5, 2.5))}),
        "decline": _Shape("decline", {"endFactor": float(rng.uniform(0.4, 0.7))}),
        "level-shift": _Shape("migration", {"endFactor": float(rng.choice([0.7, 1.4, 1.6])), "at": at},
                              event="level-shift"),
        "viral": _Shape("viral", {"factor": float(rng.uniform(2.0, 4.0)), "at": at, "decayHours": 24 * 12.0},
                        event="spike"),
        "launch": _Shape("launch", {"endFactor": float(rng.uniform(1.5, 2.5)), "at": at, "widthHours": 24 * 8.0}),
        "migration": _Shape("migration", {"endFactor": float(rng.uniform(0.5, 0.7)), "at": at},
                            event="level-shift", extra=_overlap(at, days, rng)),
        "multi-tenant": _Shape("multitenant", {"tenants": float(rng.integers(4, 9))}, noise=0.02),
        "holidays": _Shape("weekend", week, extra=_holidays),
        "noisy": _Shape("weekend", week, noise=0.2),
    }


def _overlap(at: float, days: int, rng: np.random.Generator):
    """Before a migration's cut-over, old and new run side by side for 5-10 days (+40-60%)."""
    cut = int(round(at * (days - 1)))
    width = int(rng.integers(5, 11))
    extra = float(rng.uniform(0.4, 0.6))

    def overlap(values: np.ndarray, dates: list[date], _rng: np.random.Generator) -> np.ndarray:
        out = values.copy()
        out[max(0, cut - width):cut] *= 1.0 + extra
        return out
    return overlap


def _rng(family: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(family.encode())])


def _daily(shape: _Shape, start: date, days: int, rng: np.random.Generator) -> np.ndarray:
    """The pattern rendered hourly, summed per day, times a price, with the family's calendar effect."""
    first = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
    hours = first + 3600 * np.arange(days * 24, dtype=np.int64)
    params = {"base": 1.0, **shape.params}
    curve = render(shape.pattern, hours.astype(np.float64), params, 0.0, rng).values
    per_day = curve.reshape(days, 24).mean(axis=1) * float(rng.uniform(200.0, 5000.0))
    dates = [start + timedelta(days=i) for i in range(days)]
    if shape.extra is not None:
        per_day = shape.extra(per_day, dates, rng)
    noise = 1.0 + shape.noise * rng.standard_normal(days)
    return np.clip(per_day * noise, 0.0, None)


def _inject(values: np.ndarray, start: date, rng: np.random.Generator) -> tuple[np.ndarray, list[Label]]:
    """2-4 anomalies after the first two weeks, none touching another."""
    out = values.copy()
    labels: list[Label] = []
    taken: set[int] = set()
    for _ in range(int(rng.integers(2, 5))):
        length = 1 if rng.random() < 0.6 else 2
        day = int(rng.integers(14, len(values) - length))
        if taken & set(range(day - 2, day + length + 2)):
            continue
        taken |= set(range(day, day + length))
        spike = rng.random() < 0.6
        out[day:day + length] *= rng.uniform(1.6, 3.0) if spike else rng.uniform(0.3, 0.6)
        labels.append(Label(start + timedelta(days=day), start + timedelta(days=day + length - 1),
                            "spike" if spike else "dip"))
    return out, labels


def _event_day(at: float, days: int) -> int:
    """The day most of which is after the pattern's step at fraction ``at`` of the hourly window."""
    hour = int(np.ceil(at * (days * 24 - 1)))
    return hour // 24 + (1 if hour % 24 > 12 else 0)


def cost_series(family: str, *, days: int = 150, seed: int = 0, start: date = date(2024, 1, 1),
                anomalies: bool = True) -> CostSeries:
    """One seeded series of ``family`` (:data:`FAMILIES`) over ``days`` days from ``start``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown cost series family {family!r}; one of {', '.join(FAMILIES)}")
    rng = _rng(family, seed)
    shape = _shapes(rng, days)[family]
    clean = _daily(shape, start, days, rng)
    values, labels = _inject(clean, start, rng) if anomalies else (clean.copy(), [])
    if shape.event is not None:
        labels.append(Label(*(2 * (start + timedelta(days=_event_day(shape.params["at"], days)),)), shape.event))
    labels.sort(key=lambda label: label.start)
    return CostSeries(family, seed, SpendSeries(start, values), clean, labels)
