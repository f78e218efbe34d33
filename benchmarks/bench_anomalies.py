"""Anomaly precision and recall on seeded synthetic daily cost series (issue 10).

    python benchmarks/bench_anomalies.py [--series 20] [--days 365] [--z 3.5]

Each family is a daily USD series (weekday/weekend pattern unless stated, multiplicative noise) with
anomalies injected at random days and labelled: spikes and dips of 1-3 days, +/-20% to x3, and in the
level-shift and migration families the shift itself (labelled as its first 7 days). Scored per episode:

- precision: the share of reported episodes that overlap a labelled one;
- recall: the share of labelled episodes that a reported episode overlaps;
- false alarms per series-year: reported episodes that overlap nothing, scaled to 365 days.

The first 28 days of each series carry no labels (the detector is still learning). The same generator
and seeds every run; figures to ``benchmarks/results/anomalies.json``. When the shared cost-series
generator (``simulator/costseries.py``, issue 10's forecast part) lands, ``detect`` plugs into its
benchmark as the detector callable; this script stays as the detector's own regression figure.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "operator"))

from finops_operator.anomalies import Settings, detect  # noqa: E402
from finops_operator.models.spend import SpendSeries  # noqa: E402

START = date(2025, 1, 6)
WARMUP = 28


def month_end_mask(days: int) -> np.ndarray:
    out = np.zeros(days, dtype=bool)
    for i in range(days):
        d = START + timedelta(days=i)
        out[i] = (d + timedelta(days=2)).month != d.month
    return out


def family_shape(name: str, days: int, rng: np.random.Generator) -> tuple[np.ndarray, float, list[tuple[int, int]]]:
    """(multiplicative shape, noise, labelled level-shift episodes) of one family."""
    t = np.arange(days)
    weekday = np.array([(START + timedelta(days=int(i))).weekday() for i in t])
    weekly = np.where(weekday >= 5, 0.65, 1.0)
    shape, noise, shifts = weekly.copy(), 0.04, []
    if name == "steady":
        shape = np.ones(days)
    elif name == "month-end":
        shape = weekly * np.where(month_end_mask(days), 1.9, 1.0)
    elif name == "growth":
        shape = weekly * np.exp(0.004 * t)
    elif name == "decline":
        shape = weekly * np.exp(-0.002 * t)
    elif name == "noisy":
        noise = 0.12
    elif name in ("level-shift", "migration"):
        at = int(rng.integers(days // 3, 2 * days // 3))
        factor = rng.choice([1.5, 0.6]) if name == "level-shift" else 0.7
        shape = weekly * np.where(t >= at, factor, 1.0)
        shifts.append((at, at + 6))
    return shape, noise, shifts


def inject(values: np.ndarray, rng: np.random.Generator, taken: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
    """Spikes and dips of 1-3 days at random free days; their (first, last) day indexes."""
    labels = []
    for _ in range(count * 20):
        if len(labels) == count:
            break
        length = int(rng.integers(1, 4))
        at = int(rng.integers(WARMUP, len(values) - length))
        if any(at - 10 <= last and first <= at + length + 10 for first, last in taken + labels):
            continue
        factor = rng.choice([rng.uniform(1.2, 3.0), rng.uniform(0.3, 0.8)])
        values[at:at + length] *= factor
        labels.append((at, at + length - 1))
    return labels


def make_series(name: str, days: int, seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    shape, noise, shifts = family_shape(name, days, rng)
    values = 1000.0 * shape * np.exp(rng.normal(0, noise, days))
    labels = shifts + inject(values, rng, shifts, count=max(1, days // 60))
    return values, sorted(labels)


def score(found: list[tuple[int, int]], labels: list[tuple[int, int]]) -> tuple[int, int, int]:
    """(true episodes, false episodes, labels recalled)."""
    def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return a[0] <= b[1] and b[0] <= a[1]
    scored = [f for f in found if f[1] >= WARMUP]
    true = sum(any(overlaps(f, lab) for lab in labels) for f in scored)
    recalled = sum(any(overlaps(f, lab) for f in scored) for lab in labels)
    return true, len(scored) - true, recalled


FAMILIES = ("steady", "weekly", "month-end", "growth", "decline", "noisy", "level-shift", "migration")


def run(series: int, days: int, settings: Settings) -> dict:
    out: dict = {}
    for k, name in enumerate(FAMILIES):
        true = false = recalled = labelled = 0
        started = time.perf_counter()
        for seed in range(series):
            values, labels = make_series(name, days, 1000 * k + seed)
            found = [((a.start - START).days, (a.end - START).days)
                     for a in detect(SpendSeries(START, values), settings=settings)]
            t, f, r = score(found, labels)
            true, false, recalled, labelled = true + t, false + f, recalled + r, labelled + len(labels)
        out[name] = {"series": series, "days": days, "labelled": labelled,
                     "precision": round(true / (true + false), 3) if true + false else None,
                     "recall": round(recalled / labelled, 3) if labelled else None,
                     "falseAlarmsPerSeriesYear": round(false / (series * (days - WARMUP) / 365), 2),
                     "secondsPerSeries": round((time.perf_counter() - started) / series, 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20, help="series per family (default 20)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--z", type=float, default=Settings().z, help="robust z-score a day must exceed")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "anomalies.json")
    args = parser.parse_args()
    settings = replace(Settings(), z=args.z)
    families = run(args.series, args.days, settings)
    doc = {"benchmark": "anomalies", "settings": {"z": settings.z, "shiftDays": settings.shift_days},
           "families": families}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for name, row in families.items():
        print(f"{name:12} precision {row['precision']}  recall {row['recall']}  "
              f"false/yr {row['falseAlarmsPerSeriesYear']}  {row['secondsPerSeries']} s/series")


if __name__ == "__main__":
    main()
