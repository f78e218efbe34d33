"""Which part of the spend moved most: the driver of an anomaly.

Each part of a breakdown (``"namespace search"``, ``"service AmazonEC2"``, ...) gets its own expected
value from the same model as the total (:func:`.scan.scan`); on the episode's worst day the driver is
the part whose ``actual - expected`` is largest in the episode's direction (up for a spike, down for a dip).
"""
from __future__ import annotations

from datetime import date

import numpy as np

from ..models.spend import SpendSeries
from .baseline import Settings
from .scan import scan


class Drivers:
    """The breakdown's expected values, computed once, asked once per episode."""

    def __init__(self, breakdown: dict[str, SpendSeries], settings: Settings):
        self.parts = {name: (s, scan(s.start, s.values, settings).expected) for name, s in breakdown.items()}

    def moved_most(self, day: date, sign: int) -> tuple[str, float] | None:
        """(part, USD actual - expected) of the part that moved most in direction ``sign`` on ``day``."""
        best: tuple[str, float] | None = None
        for name, (series, expected) in self.parts.items():
            i = (day - series.start).days
            if not 0 <= i < len(series.values) or np.isnan(series.values[i]) or np.isnan(expected[i]):
                continue
            delta = float(series.values[i] - expected[i])
            if sign * delta > 0 and (best is None or sign * delta > sign * best[1]):
                best = (name, delta)
        return best
