"""`finops health`: the FinOps health score per team or namespace, with its breakdown.

    finops health [--by team|namespace] [--output table|json] [--snapshot FILE | --kubeconfig [PATH]
                  --prometheus URL] [--policy FILE]

Offline (a snapshot, or the demo's bundled scenario through the simulator): the cost allocation of the
data's window (``costrun.allocate_window`` with the simulated bill), hourly usage from the snapshot, and
the ledger of one scan of it (``pipeline.scan``: the opportunities detected; no pull request exists
offline, so "savings" has no data and is left out, as the output says). Live: inventory and hourly
usage of ``--history`` (default 14d) from the cluster and Prometheus, prices from the book, the ledger
from the cluster's SavingsOpportunity objects and the budgets from the Budgets' evaluated status.

JSON (``finops.health/v1``): ``{"kind", "by", "source", "window", "scores": [{subject, score, grade,
band, renormalised, categories: [{category, value, score, weight, configuredWeight, explanation}]}]}``.
"""
from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigError
from ..health import HealthData, HealthScore, health_scores
from ..settings import PolicySettings
from .common import DEMO_SCENARIO, load_policy_file, print_json, progress

KIND = "finops.health/v1"
_BAND_STYLE = {"excellent": "green", "good": "green", "fair": "yellow", "poor": "red", "critical": "bold red"}


def offline_health_data(data: Any, settings: PolicySettings, *, result: Any = None) -> HealthData:
    """Allocation (simulated bill), usage and a scan's ledger (``result``, else one scan) of a Simulation or a
    Snapshot's whole window."""
    from ..costreport import CostWindow
    from ..ledger import Ledger
    from ..pipeline import scan
    from ..simulator import usage_hours
    from ..snapshot import Snapshot
    from ..usage import state_for_policy
    from .costs import allocate_offline

    state = data.state
    window = CostWindow("all", state.window.start, state.window.end)
    allocation, _ = allocate_offline(data, settings, window)
    if result is None:
        snapshot = data if isinstance(data, Snapshot) else data.snapshot()
        result = scan(state_for_policy(snapshot, settings), settings)
    ledger = Ledger()
    ledger.observe(result.findings, result.decisions, state.window.end)
    return HealthData(allocation=allocation, usage=usage_hours(data), opportunities=ledger.opportunities,
                      budgets=None, team_label=settings.allocation.team_label)


def live_health_data(args: argparse.Namespace, settings: PolicySettings) -> HealthData:
    from ..api.healthjob import budget_standings
    from ..api.opportunities import read_ledger
    from .live import read_live_allocation, read_live_objects, utcnow
    from ..units import parse_duration

    now = utcnow()
    allocation, usage = read_live_allocation(args, settings, now - parse_duration(args.history), now)
    listed, budgets = read_live_objects(args)
    ledger = read_ledger(listed)
    standings, notes = budget_standings(budgets, now)
    return HealthData(allocation=allocation, usage=usage, opportunities=ledger.ledger.opportunities,
                      budgets=standings, team_label=settings.allocation.team_label, notes=notes)


def run_health(args: argparse.Namespace, console: Console, *, data: HealthData | None = None) -> int:
    if args.prometheus and args.kubeconfig is None:
        raise ConfigError("--prometheus reads a live cluster; add --kubeconfig [PATH] (or drop --prometheus to read "
                          "a snapshot)", field="--prometheus")
    settings = load_policy_file(args.policy)
    source = "given"
    if data is None and args.kubeconfig is not None:
        if not args.prometheus:
            raise ConfigError("a live cluster needs --prometheus URL, e.g. --prometheus http://localhost:9090",
                              field="--prometheus")
        data, source = live_health_data(args, settings), "the live cluster"
    elif data is None:
        data, source = _offline(args.snapshot, settings, console)
    scores = health_scores(data, args.by, settings.health.weights)
    if args.output == "json":
        print_json(health_to_json(scores, by=args.by, source=source, data=data))
    else:
        console.print(f"[dim]{escape(source)}[/]")
        console.print(health_table(scores, args.by))
        for line in breakdown_lines(scores):
            console.print(line, soft_wrap=True)
        for note in data.notes:
            console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    return 0


def _offline(snapshot: Path | None, settings: PolicySettings, console: Console) -> tuple[HealthData, str]:
    with progress(console) as bar:
        bar.add_task("Reading the cluster and scoring", total=None)
        if snapshot is None:
            from ..simulator import load_scenario, simulate
            raw: Any = simulate(load_scenario(DEMO_SCENARIO))
            name = "the demo cluster"
        else:
            from ..snapshot import load_snapshot
            raw, name = load_snapshot(snapshot), str(snapshot)
        return offline_health_data(raw, settings), f"{name} ({raw.state.cluster}, {raw.state.region})"


def health_to_json(scores: list[HealthScore], *, by: str, source: str, data: HealthData) -> dict[str, Any]:
    window = None
    if data.allocation is not None:
        window = {"start": data.allocation.start.isoformat(), "end": data.allocation.end.isoformat(),
                  "days": round((data.allocation.end - data.allocation.start) / timedelta(days=1), 2)}
    return {"kind": KIND, "by": by, "source": source, "window": window, "notes": list(data.notes),
            "scores": [score_to_json(s) for s in scores]}


def score_to_json(s: HealthScore) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": s.subject, "score": s.score, "grade": s.grade, "band": s.band,
                           "renormalised": s.renormalised or None,
                           "categories": [{"category": c.category, "value": c.value, "score": c.score,
                                           "weight": c.weight, "configuredWeight": c.configured_weight,
                                           "explanation": c.explanation} for c in s.categories]}
    if s.trend is not None:
        t = s.trend
        out["trend"] = {"direction": t.direction, "windowDays": t.window_days, "change": t.change,
                        "recent": t.recent, "previous": t.previous, "explanation": t.explanation}
    return out


def show_team_health(console: Console, data: Any, settings: PolicySettings, *, result: Any = None) -> None:
    """The team health table of a simulation or snapshot (``finops demo`` ends with it)."""
    scores = health_scores(offline_health_data(data, settings, result=result), "team", settings.health.weights)
    console.print()
    console.print(health_table(scores, "team", title="FinOps health by team (finops health)"))
    for line in breakdown_lines(scores):
        console.print(line, soft_wrap=True)


def _cell(score: float | None) -> str:
    return "—" if score is None else f"{score:.0f}"


def health_table(scores: list[HealthScore], by: str, *, title: str | None = None) -> Table:
    table = Table(title=title or f"FinOps health by {by}", header_style="bold")
    table.add_column(by.capitalize())
    table.add_column("Score", justify="right")
    table.add_column("Grade")
    for name in ("Efficiency", "Waste", "Budget", "Savings"):
        table.add_column(name, justify="right")
    table.add_column("Trend")
    for s in scores:
        style = _BAND_STYLE.get(s.band)
        grade = f"{s.grade} {s.band}"
        table.add_row(escape(s.subject), _cell(s.score), f"[{style}]{grade}[/]" if style else grade,
                      *(_cell(c.score) for c in s.categories),
                      s.trend.direction if s.trend is not None else "—")
    return table


def breakdown_lines(scores: list[HealthScore]) -> list[str]:
    """One line per subject whose score left categories out, and the bands' legend."""
    lines = [f"[yellow]note:[/] {escape(s.subject)}: {escape(s.renormalised)}" for s in scores if s.renormalised]
    lines.append("[dim]— : no data for that category (left out, the other weights renormalised); bands: A >= 90 "
                 "excellent, B >= 75 good, C >= 60 fair, D >= 40 poor, F critical[/]")
    return lines
