"""Combine the categories into one score per subject, with the breakdown and the trend."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta

from . import bands
from .categories import CATEGORIES, Measure
from .inputs import BY, HealthData
from .settings import HealthWeights

STEADY = 3.0                 # points: a smaller move of the mean is "steady"
MIN_POINTS = 2               # days of history each side of the trend comparison


@dataclass(frozen=True, slots=True)
class CategoryScore:
    category: str
    value: float | None                # the measured quantity (a ratio); None: no data
    score: float | None                # 0-100; None: no data
    weight: float                      # the share of the total it carries after renormalisation (0 when left out)
    configured_weight: int
    explanation: str


@dataclass(frozen=True, slots=True)
class Trend:
    direction: str                     # improving | declining | steady | unknown
    window_days: int                   # the recent window (compared with the same number of days before it)
    change: float | None               # recent mean - previous mean, in points
    recent: float | None
    previous: float | None
    explanation: str


@dataclass(frozen=True, slots=True)
class HealthScore:
    subject: str
    by: str                            # team | namespace
    score: float | None                # None: no category had data
    grade: str                         # A .. F, "-" without data
    band: str                          # excellent | good | fair | poor | critical | no data
    categories: tuple[CategoryScore, ...]
    renormalised: str                  # what was left out and how the weights were renormalised ("" when nothing)
    trend: Trend | None = None

    @property
    def key(self) -> str:
        """The subject's key in the stored history and the metrics: ``team:payments``."""
        return f"{self.by}:{self.subject}"


def combine(subject: str, by: str, measures: Mapping[str, Measure | None], weights: HealthWeights) -> HealthScore:
    """One score: the weighted mean of the categories with data; the weights of the others renormalised away."""
    configured = weights.as_dict()
    present = {c: m for c, m in measures.items() if m is not None and configured[c] > 0}
    total = sum(configured[c] for c in present)
    parts = []
    for category, weight in configured.items():
        m = measures.get(category)
        if m is None:
            parts.append(CategoryScore(category, None, None, 0.0, weight, "no data: left out of the score"))
        elif weight == 0:
            parts.append(CategoryScore(category, m.value, m.score, 0.0, 0, f"{m.explanation} (weight 0)"))
        else:
            parts.append(CategoryScore(category, round(m.value, 4), m.score, round(weight / total, 4), weight,
                                       m.explanation))
    score = round(sum(p.score * p.weight for p in parts if p.weight), 1) if total else None
    missing = [c for c in configured if c not in present and configured[c] > 0]
    note = ""
    if missing and present:
        note = (f"{', '.join(missing)} left out (no data); the weights of "
                f"{', '.join(present)} renormalised to 100%")
    elif not present:
        note = "no category had data: no score"
    letter, band = bands.grade(score)
    return HealthScore(subject, by, score, letter, band, tuple(parts), note)


def health_scores(data: HealthData, by: str, weights: HealthWeights | None = None) -> list[HealthScore]:
    """A score per subject (team or namespace) that any category has data for, worst first."""
    if by not in BY:
        raise ValueError(f"unknown grouping {by!r}; one of {', '.join(BY)}")
    weights = weights or HealthWeights()
    measured = {name: fn(data, by) for name, fn in CATEGORIES.items()}
    subjects = sorted(set().union(*measured.values()))
    scores = [combine(s, by, {name: found.get(s) for name, found in measured.items()}, weights) for s in subjects]
    return sorted(scores, key=lambda h: (h.score is None, h.score if h.score is not None else 0.0, h.subject))


def trend(history: Mapping[date, float], today: date, days: int) -> Trend:
    """Mean of the ``days`` up to ``today`` against the ``days`` before; within STEADY points is steady."""
    recent = [v for d, v in history.items() if today - timedelta(days=days) < d <= today]
    previous = [v for d, v in history.items() if today - timedelta(days=2 * days) < d <= today - timedelta(days=days)]
    if len(recent) < MIN_POINTS or len(previous) < MIN_POINTS:
        return Trend("unknown", days, None, None, None,
                     f"not enough history: {len(recent)} + {len(previous)} days scored of {2 * days} "
                     f"(at least {MIN_POINTS} each side)")
    a, b = sum(recent) / len(recent), sum(previous) / len(previous)
    change = round(a - b, 1)
    direction = "steady" if abs(change) < STEADY else "improving" if change > 0 else "declining"
    return Trend(direction, days, change, round(a, 1), round(b, 1),
                 f"mean {a:.1f} over the last {days} days against {b:.1f} the {days} days before "
                 f"({change:+.1f} points)")


def with_trend(score: HealthScore, history: Mapping[date, float], today: date, days: int) -> HealthScore:
    return replace(score, trend=trend(history, today, days))
