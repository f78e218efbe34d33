"""Forecast accuracy per cost-series family (issue 10): our ``auto`` next to the baselines, in one run.

    python benchmarks/bench_forecast.py                 # -> benchmarks/results/forecast.json (+ a table)
    python benchmarks/run.py --only forecast            # the same through the runner
    python benchmarks/bench_forecast.py --quick         # 2 seeds x 1 origin: checks the harness

For each family of :mod:`finops_operator.simulator.costseries` (injected anomalies included), each seed and
each forecast origin: train on the :data:`HISTORY` days before the origin, forecast :data:`HORIZON` days,
compare with what was spent. Per method: MAPE of the daily values, error of the 30-day total
(|forecast - actual| / actual), and the share of days inside the 95% interval. Baselines (seasonal-naive,
moving-average) go through the same :func:`forecast` call with their method forced, so they get intervals
from their own back-tests.

Next to them, per family, the operator's anomaly detector (:func:`finops_operator.anomalies.detect`, with its
defaults, as budgets run it) on each whole seeded series: precision and recall against the injected labels
(:func:`anomaly_scores`, which takes any callable ``SpendSeries -> episodes`` with ``start``/``end`` dates).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from finops_operator.anomalies import detect
from finops_operator.forecast import forecast
from finops_operator.models.spend import SpendSeries
from finops_operator.simulator.costseries import FAMILIES, CostSeries, cost_series

HISTORY = 120
HORIZON = 30
ORIGINS = (HISTORY, HISTORY + 14, HISTORY + 28)         # three origins per series, two weeks apart
DAYS = ORIGINS[-1] + HORIZON
SEEDS = 10
COMPARED = ("auto", "seasonal-naive", "moving-average")
BASELINES = ("seasonal-naive", "moving-average")
RESULT = Path(__file__).resolve().parent / "results" / "forecast.json"


def series_for(family: str, seed: int) -> CostSeries:
    """Seeded series; the start moves with the seed so month ends and holidays fall on different days."""
    return cost_series(family, days=DAYS, seed=seed, start=date(2024, 1, 1) + timedelta(days=29 * seed))


def score_one(cs: CostSeries, origin: int, method: str) -> dict[str, Any]:
    values = cs.series.values
    history = SpendSeries(cs.series.start + timedelta(days=origin - HISTORY), values[origin - HISTORY:origin])
    result = forecast(history, HORIZON, method)
    actual = values[origin:origin + HORIZON]
    predicted = np.array([p.value for p in result.points])
    lower = np.array([p.lower for p in result.points])
    upper = np.array([p.upper for p in result.points])
    positive = actual > 0
    return {"mape": float(np.mean(np.abs(predicted - actual)[positive] / actual[positive])),
            "total_error": float(abs(predicted.sum() - actual.sum()) / actual.sum()),
            "coverage": float(np.mean((actual >= lower) & (actual <= upper))),
            "method": result.method.split(" ")[0]}


def run(seeds: int = SEEDS, origins: Iterable[int] = ORIGINS, families: Iterable[str] = FAMILIES) -> dict[str, Any]:
    table: dict[str, Any] = {}
    origins = tuple(origins)
    for family in families:
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in COMPARED}
        for seed in range(seeds):
            cs = series_for(family, seed)
            for origin in origins:
                for method in COMPARED:
                    runs[method].append(score_one(cs, origin, method))
        table[family] = summarise(runs)
    for family, scores in anomaly_scores(detect, seeds, table).items():
        table[family]["anomalies"] = scores
    return table


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method, rows in runs.items():
        out[method] = {key: round(float(np.mean([r[key] for r in rows])), 4)
                       for key in ("mape", "total_error", "coverage")}
    chosen = [r["method"] for r in runs["auto"]]
    out["auto"]["chosen"] = {name: chosen.count(name) for name in sorted(set(chosen))}
    best = min(BASELINES, key=lambda m: out[m]["total_error"])
    out["best_baseline"] = best
    out["beats_best_baseline"] = out["auto"]["total_error"] < out[best]["total_error"]
    return out


# --------------------------------------------------------------------------- the anomalies hook


Detector = Callable[[SpendSeries], Iterable[Any]]


def _overlaps(a_start: date, a_end: date, b_start: date, b_end: date, slack: int = 1) -> bool:
    return a_start <= b_end + timedelta(days=slack) and b_start <= a_end + timedelta(days=slack)


def anomaly_scores(detector: Detector, seeds: int = SEEDS, families: Iterable[str] = FAMILIES) -> dict[str, Any]:
    """Precision and recall of ``detector`` on each family's whole series (episodes matched a day either side)."""
    out: dict[str, Any] = {}
    for family in families:
        found = right = labelled = recalled = 0
        for seed in range(seeds):
            cs = series_for(family, seed)
            episodes = [(e.start, e.end) for e in detector(cs.series)]
            found += len(episodes)
            right += sum(any(_overlaps(s, e, lab.start, lab.end) for lab in cs.labels) for s, e in episodes)
            labelled += len(cs.labels)
            recalled += sum(any(_overlaps(s, e, lab.start, lab.end) for s, e in episodes) for lab in cs.labels)
        out[family] = {"precision": round(right / found, 4) if found else None,
                       "recall": round(recalled / labelled, 4) if labelled else None,
                       "detected": found, "labelled": labelled}
    return out


# --------------------------------------------------------------------------- output


def markdown(table: dict[str, Any]) -> str:
    head = ("| family | auto: total err | seasonal-naive | moving-average | auto: daily MAPE | s-naive | m-avg "
            "| auto: 95% coverage | s-naive | m-avg | beats best baseline | auto chose "
            "| anomalies: precision | recall |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: | --- | ---: | ---: |\n")
    rows = []
    for family, r in table.items():
        cells = [family]
        for key in ("total_error", "mape", "coverage"):
            cells += [f"{100 * r[m][key]:.1f}%" for m in COMPARED]
        cells.append("yes" if r["beats_best_baseline"] else "**no**")
        cells.append(", ".join(f"{k} {v}" for k, v in r["auto"]["chosen"].items()))
        found = r.get("anomalies", {})
        cells += ["-" if found.get(k) is None else f"{100 * found[k]:.0f}%" for k in ("precision", "recall")]
        rows.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 1 origin")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    table = run(2, ORIGINS[:1]) if args.quick else run()
    doc = {"benchmark": "forecast accuracy per cost-series family (issue 10)",
           "setup": {"history_days": HISTORY, "horizon_days": HORIZON, "seeds": 2 if args.quick else SEEDS,
                     "origins": list(ORIGINS[:1] if args.quick else ORIGINS), "compared": list(COMPARED)},
           "families": table, "seconds": round(time.perf_counter() - began, 1), "quick": args.quick}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(markdown(table))
    print(json.dumps({"seconds": doc["seconds"], "out": str(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
