"""The documented bands: how a category's value becomes a 0-100 score, and a score its grade.

Each category maps its value to a score by straight lines between the anchor points below
(``np.interp``: flat beyond the first and last). They are the table in the package docstring
and the README; a test reads them from here.
"""
from __future__ import annotations

import numpy as np

# value -> score anchors per category
EFFICIENCY = ((0.0, 0.0), (0.2, 25.0), (0.4, 60.0), (0.6, 90.0), (0.7, 100.0))     # used / requested
WASTE = ((0.0, 100.0), (0.1, 85.0), (0.25, 60.0), (0.5, 20.0), (0.7, 0.0))         # idle + orphaned share of cost
PACE = ((1.0, 100.0), (1.1, 80.0), (1.25, 60.0), (1.5, 30.0), (2.0, 0.0))          # % used / % of period elapsed
SAVINGS = ((0.0, 0.0), (0.25, 30.0), (0.5, 60.0), (0.7, 80.0), (0.9, 100.0))       # realized/estimated, merged/opened
STATE_CAP = {"OK": 100.0, "Warning": 70.0, "ForecastExceeded": 40.0, "Exceeded": 0.0}   # a budget's score at most
MIN_ELAPSED = 0.1          # pace is measured against at least 10% of the period (day one is not a 30x pace)
GRADES = ((90.0, "A", "excellent"), (75.0, "B", "good"), (60.0, "C", "fair"), (40.0, "D", "poor"),
          (0.0, "F", "critical"))


def banded(value: float, anchors: tuple[tuple[float, float], ...]) -> float:
    xs, ys = zip(*anchors)
    return round(float(np.interp(value, xs, ys)), 1)


def grade(score: float | None) -> tuple[str, str]:
    """(letter, band) of an overall score; ("-", "no data") when no category had data."""
    if score is None:
        return "-", "no data"
    for floor, letter, band in GRADES:
        if score >= floor:
            return letter, band
    return "F", "critical"
