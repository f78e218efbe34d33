"""`finops anomalies`: cost anomalies in a daily spend CSV (see :mod:`finops_operator.anomalies`).

    finops anomalies --csv FILE [--threshold USD] [--relative FRACTION] [--output table|json]

JSON: ``{"anomalies": [{"date": "YYYY-MM-DD", "end": "YYYY-MM-DD", "severity": "low|medium|high",
"kind": "spike|dip|level-shift", "expected": 1234.5, "actual": 2345.6, "byThreshold": false}, ...]}``,
oldest first; ``date`` is the episode's first day, ``end`` its last, ``expected``/``actual`` (USD, cents)
those of its worst day.
"""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ..anomalies import detect
from ..models.spend import Anomaly
from ..money import cents, usd
from .common import print_json
from .spendcsv import read_spend_csv

_SEVERITY_STYLE = {"low": "yellow", "medium": "dark_orange", "high": "red"}


def run_anomalies(args: argparse.Namespace, console: Console) -> int:
    series = read_spend_csv(args.csv)
    found = detect(series, threshold=args.threshold, relative=args.relative)
    if args.output == "json":
        print_json({"anomalies": [anomaly_json(a) for a in found]})
    else:
        console.print(anomalies_table(found, f"{args.csv}: {series.start} to {series.days[-1]}"))
    return 0


def _money(amount: float) -> float | None:
    value = cents(amount)
    return None if value is None else float(value)


def anomaly_json(a: Anomaly) -> dict:
    doc: dict = {"date": a.start.isoformat(), "end": a.end.isoformat(), "severity": a.severity.value,
                 "kind": a.kind.value, "expected": _money(a.expected), "actual": _money(a.actual),
                 "byThreshold": a.by_threshold}
    if a.driver is not None:
        doc["driver"] = a.driver
        doc["driverDelta"] = _money(a.driver_delta) if a.driver_delta is not None else None
    return doc


def anomalies_table(found: list[Anomaly], title: str) -> Table:
    table = Table(title=f"Anomalies ({len(found)}) in {title}", header_style="bold")
    for name, justify in (("From", "left"), ("To", "left"), ("Kind", "left"), ("Severity", "left"),
                          ("Expected", "right"), ("Actual", "right"), ("Off", "right")):
        table.add_column(name, justify=justify)
    for a in found:
        off = f"{(a.actual - a.expected) / a.expected:+.0%}" if a.expected > 0 else "n/a"
        kind = a.kind.value + (" (threshold)" if a.by_threshold else "")
        style = _SEVERITY_STYLE[a.severity.value]
        table.add_row(a.start.isoformat(), a.end.isoformat(), kind, f"[{style}]{a.severity.value}[/]",
                      usd(a.expected), usd(a.actual), off)
    return table
