"""A budget's daily spend history as it is stored (bounded, compressed JSON) and merged (pure).

    history = decode(blob)                             # ValueError (with what is wrong) on anything unreadable
    history = merge(history, {day: cost, ...}, today)  # new days win; at most MAX_DAYS kept, none after today
    blob = encode(history)                             # gzip of {"version", "timeZone", "start", "values"}

``values`` are USD per calendar day in ``time_zone`` from ``start``; ``null`` is a day without data.
``complete`` is the first day not yet final: that day and later ones are recomputed on the next
evaluation (today is partial; yesterday's last hours may not have been scraped yet); see
:func:`first_open_day`.
"""
from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

import numpy as np

from ..models.spend import SpendSeries
from ..safeio import gunzip_json
from .periods import day_bounds

VERSION = 1
MAX_DAYS = 400                  # more than a year: a Yearly period plus the forecast's back-test
MAX_BLOB = 64 * 1024            # compressed bytes accepted (400 days need about 4 KiB)
MAX_JSON = 256 * 1024           # decompressed bytes accepted (a gzip bomb stops here)
SETTLE = timedelta(hours=2)    # a day's cost is final this long after its end (scrape and write lag)
MAX_COST = 1e12                 # USD per day; anything above is not a cost


@dataclass(frozen=True, slots=True)
class SpendHistory:
    series: SpendSeries | None                 # None: nothing recorded yet
    time_zone: str
    complete: date | None = None               # days before this are final

    def missing(self, first: date, today: date) -> list[date]:
        """Days in [first, today] that must be (re)computed: never recorded, or not final yet."""
        days = []
        for i in range((today - first).days + 1):
            day = first + timedelta(days=i)
            if not self._final(day):
                days.append(day)
        return days

    def _final(self, day: date) -> bool:
        """Recorded before it was complete: kept (a day without data stays unknown, it is not asked again)."""
        if self.series is None or self.complete is None or day >= self.complete:
            return False
        return self.series.start <= day < self.series.end


def first_open_day(now: datetime, zone: tzinfo, settle: timedelta = SETTLE) -> date:
    """The first day whose cost may still change at ``now``: its local end plus ``settle`` is not past."""
    day = now.astimezone(zone).date() - timedelta(days=1)
    while day_bounds(day, zone)[1] + settle > now:
        day -= timedelta(days=1)
    return day + timedelta(days=1)


def merge(history: SpendHistory, days: dict[date, float], today: date, *, complete: date) -> SpendHistory:
    """``history`` with ``days`` written over it, trimmed to the MAX_DAYS up to ``today``."""
    pairs = {}
    if history.series is not None:
        pairs = {d: float(v) for d, v in zip(history.series.days, history.series.values)}
    pairs.update(days)
    first = today - timedelta(days=MAX_DAYS - 1)
    kept = [(d, v) for d, v in pairs.items() if first <= d <= today]
    if not kept:
        return SpendHistory(None, history.time_zone, complete)
    series = SpendSeries.from_pairs(kept)
    return SpendHistory(series, history.time_zone, complete)


def encode(history: SpendHistory) -> bytes:
    series = history.series
    doc = {"version": VERSION, "timeZone": history.time_zone,
           "complete": history.complete.isoformat() if history.complete else None,
           "start": series.start.isoformat() if series is not None else None,
           "values": [None if not math.isfinite(v) else round(float(v), 6) for v in series.values]
           if series is not None else []}
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0)


def decode(blob: bytes) -> SpendHistory:
    """The stored history; ValueError saying what is wrong for anything not written by :func:`encode`."""
    doc = gunzip_json(blob, max_blob=MAX_BLOB, max_raw=MAX_JSON)
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise ValueError(f"not a version-{VERSION} spend history")
    zone, values = doc.get("timeZone"), doc.get("values")
    if not isinstance(zone, str) or not isinstance(values, list) or len(values) > MAX_DAYS:
        raise ValueError(f"timeZone must be a string and values a list of at most {MAX_DAYS} days")
    complete = _day(doc.get("complete"), "complete") if doc.get("complete") is not None else None
    if not values:
        return SpendHistory(None, zone, complete)
    return SpendHistory(SpendSeries(_day(doc.get("start"), "start"), _values(values)), zone, complete)


def _values(values: list) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= MAX_COST:
            raise ValueError(f"values[{i}] must be a cost in USD from 0 to {MAX_COST:g} or null, got {v!r}")
        out[i] = float(v)
    return out


def _day(text: object, name: str) -> date:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"{name} must be a date YYYY-MM-DD, got {text!r}") from None
