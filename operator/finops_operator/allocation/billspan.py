"""Where a bill line falls in the allocation window: its hour indices and the share of it inside.

A line covers ``[start, end)``; the window is the hours of a :class:`UsageHours`
(``[hours[0], hours[-1] + 1h)``). The part of a line outside the window cannot be
put on any hour: the engine reports it as UNALLOCATED, never drops it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.costs import BillLine

HOUR = 3600


@dataclass(frozen=True, slots=True)
class Span:
    first: int          # hour index, inclusive
    stop: int           # hour index, exclusive (first == stop: nothing inside)
    inside: float       # fraction of the line's cost that falls inside the window (0..1)

    @property
    def empty(self) -> bool:
        return self.stop <= self.first or self.inside <= 0.0


def window_of(hours: np.ndarray) -> tuple[int, int]:
    """The window's [start, end) in epoch seconds."""
    if len(hours) == 0:
        return 0, 0
    return int(hours[0]), int(hours[-1]) + HOUR


def span_of(line: BillLine, hours: np.ndarray) -> Span:
    """The hours ``line`` covers in the window, and the fraction of its cost inside it."""
    t0, t1 = window_of(hours)
    start, end = line.start.timestamp(), line.end.timestamp()
    if end <= start:                          # an instant (or a malformed line): all of it where it starts
        inside = 1.0 if t0 <= start < t1 else 0.0
        first = int((start - t0) // HOUR)
        return Span(first, first + 1, inside) if inside else Span(0, 0, 0.0)
    lo, hi = max(start, t0), min(end, t1)
    if hi <= lo:
        return Span(0, 0, 0.0)
    first = int((lo - t0) // HOUR)
    stop = int(-(-(hi - t0) // HOUR))
    return Span(first, stop, (hi - lo) / (end - start))
