"""`finops insights`: what the numbers mean for a CFO, an engineer, a finance analyst or a business lead.

    finops insights [--persona cfo|engineer|finance|business] [--min-priority low|medium|high|critical]
                    [--category C ...] [--since YYYY-MM-DD] [--budget USD] [--output table|json]
                    [--snapshot FILE | --kubeconfig [PATH] --prometheus URL] [--policy FILE]

Offline (the default: the demo's bundled scenario through the simulator; or ``--snapshot FILE``) every
generator has its data: the usage summaries (OOM kills, throttling), the window's allocation reconciled
with the simulated bill, the daily spend (one allocation per UTC day) and its breakdown by namespace,
the forecast to the quarter's end (``forecast.forecast``), the anomalies (``anomalies.detect`` with the
namespaces as drivers), the opportunities of a scan (``pipeline.scan`` into a fresh ledger) and the
business series (``simulator.business``: the scenario's ``business`` block, the defaults for a snapshot).
``--budget USD`` adds a monthly budget of that amount evaluated on the daily spend. Live
(``--kubeconfig``): the inventory and usage from the cluster and Prometheus, the allocation of the last
``--window`` days at price-book prices; no daily spend, so the spend, forecast and anomaly insights are absent.

JSON (``--output json``): ``{"apiVersion": "finops.insights/v1", "source": str, "generated": ISO time or
null, "insights": [INSIGHT]}`` with INSIGHT = ``{"id", "persona", "title", "description", "priority",
"category", "impact" (USD/month or null), "recommendation", "confidence" (0..1), "generator", "created"
(ISO or null), "team" (or null), "metadata" (object), "evidence": [{"kind", "name", "url"}]}``, highest
priority first.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigError
from ..insights import BudgetView, InsightData, generate
from ..insights.finance import quarter_end
from ..models.costs import charge_key
from ..models.insights import Category, Insight, Persona, Priority
from ..models.spend import SpendSeries
from ..money import usd
from ..settings import PolicySettings
from .common import DEMO_SCENARIO, load_policy_file, load_prices, print_json, progress

API_VERSION = "finops.insights/v1"
_STYLE = {Priority.CRITICAL: "bold red", Priority.HIGH: "red", Priority.MEDIUM: "yellow", Priority.LOW: "dim"}


@dataclass
class Source:
    description: str
    data: InsightData


# --------------------------------------------------------------------------- building InsightData offline


def offline_data(source: Any, settings: PolicySettings, *, business: Any = None, seed: int = 0,
                 budget: float | None = None, policy: Path | None = None, scanned: Any = None) -> InsightData:
    """A Simulation or a Snapshot -> everything the generators draw on (see the module docstring).

    ``scanned``: a ScanResult of the same source already made (the demo's), else the source is scanned."""
    from ..costrun import allocate_window
    from ..simulator import business_series, simulate_bill, usage_hours
    state0 = source.state
    window = state0.window
    book = load_prices(policy, state0.region)
    bill = simulate_bill(source, book)
    usage = usage_hours(source)
    allocation = allocate_window(usage, state0.nodes, book, bill, settings.allocation)
    spend, by_namespace = daily_spend(source, settings, book, bill)
    now = window.end
    data = InsightData(state=_state(source, settings), allocation=allocation, bill=bill.clip(window.start, window.end),
                       spend=spend, spend_by={"namespace": by_namespace}, now=now,
                       business=business_series(usage, business, seed=seed),
                       opportunities=_opportunities(source, settings, now, scanned))
    _add_forecasts(data, budget)
    return data


def daily_spend(source: Any, settings: PolicySettings, book: Any, bill: Any
                ) -> tuple[SpendSeries, dict[str, SpendSeries]]:
    """One allocation per whole UTC day of the source's window: the total and the cost per namespace
    (idle, shared and unallocated under their own names)."""
    from ..costrun import allocate_window
    from ..simulator import usage_hours
    window = source.state.window
    first = window.start.date()
    days = (window.end.date() - first).days
    totals, keys = np.full(days, np.nan), {}
    for i in range(days):
        start = datetime.combine(first + timedelta(days=i), datetime.min.time(), UTC)
        allocation = allocate_window(usage_hours(source, start, start + timedelta(days=1)), source.state.nodes,
                                     book, bill, settings.allocation)
        totals[i] = allocation.total
        for key, cost in allocation.group_by(lambda c: charge_key(c, "namespace") or c.kind.value).items():
            keys.setdefault(key, np.zeros(days))[i] += cost
    return SpendSeries(first, totals), {k: SpendSeries(first, v) for k, v in keys.items()}


def _state(source: Any, settings: PolicySettings) -> Any:
    from ..usage import state_for_policy
    snapshot = source.snapshot() if hasattr(source, "snapshot") else source
    return state_for_policy(snapshot, settings)


def _opportunities(source: Any, settings: PolicySettings, now: datetime, result: Any = None) -> list[Any]:
    """A scan of the source (no repository: findings and guardrail verdicts) recorded in a fresh ledger."""
    from ..guardrails import GuardrailContext
    from ..ledger import Ledger
    from ..pipeline import scan
    if result is None:
        result = scan(_state(source, settings), settings, context=GuardrailContext(now=now + timedelta(hours=1)))
    ledger = Ledger()
    ledger.observe(result.findings, result.decisions, now)
    return ledger.opportunities


def _add_forecasts(data: InsightData, budget: float | None) -> None:
    """Forecast to the quarter's end, anomalies with the namespaces as drivers, and the ``--budget``."""
    from ..anomalies import detect
    from ..forecast import forecast
    assert data.spend is not None and data.now is not None
    end = quarter_end(data.spend.end - timedelta(days=1))            # the finance projections reach it
    data.forecast = forecast(data.spend, max(1, (end - data.spend.end).days))
    data.anomalies = detect(data.spend, breakdown={f"namespace {k}": s for k, s in data.spend_by["namespace"].items()})
    if budget is not None:
        from ..budgets.evaluate import BudgetRules, Memory, evaluate
        rules = BudgetRules(budget, "Monthly", ())
        evaluation = evaluate(rules, data.spend, now=data.now - timedelta(seconds=1), memory=Memory(),
                              forecaster=lambda s, h: forecast(s, h))
        data.budgets = [BudgetView.of("cluster (--budget)", budget, evaluation)]


def demo_source(snapshot: Path | None, settings: PolicySettings, console: Console, *, budget: float | None,
                policy: Path | None) -> Source:
    with progress(console) as bar:
        if snapshot is None:
            from ..simulator import load_scenario, simulate
            bar.add_task("Simulating the demo cluster", total=None)
            spec = load_scenario(DEMO_SCENARIO)
            source, name, business, seed = simulate(spec), "the demo cluster", spec.business, spec.seed
        else:
            from ..snapshot import load_snapshot
            bar.add_task(f"Loading {snapshot.name}", total=None)
            source, name, business, seed = load_snapshot(snapshot), str(snapshot), None, 0
        bar.add_task("Allocating each day, forecasting, scanning", total=None)
        data = offline_data(source, settings, business=business, seed=seed, budget=budget, policy=policy)
    return Source(f"{name} ({source.state.cluster}, {source.state.region})", data)


def live_source(args: argparse.Namespace, settings: PolicySettings, console: Console) -> Source:
    if not args.prometheus:
        raise ConfigError("a live cluster needs --prometheus URL, e.g. --prometheus http://localhost:9090",
                          field="--prometheus")
    from .live import load_live_state, read_live_costs, utcnow
    now = utcnow()
    state = load_live_state(args, settings, console)
    allocation, bill = read_live_costs(args, settings, now - timedelta(days=args.window), now)
    return Source(f"the live cluster of {args.kubeconfig or 'the default kubeconfig'}",
                  InsightData(state=state, allocation=allocation, bill=bill, now=now))


# --------------------------------------------------------------------------- the command


def run_insights(args: argparse.Namespace, console: Console, *, source: Source | None = None) -> int:
    since = _since(args.since)
    if args.prometheus and args.kubeconfig is None:
        raise ConfigError("--prometheus reads a live cluster; add --kubeconfig [PATH]", field="--prometheus")
    settings = load_policy_file(args.policy)
    if source is None:
        source = live_source(args, settings, console) if args.kubeconfig is not None else \
            demo_source(args.snapshot, settings, console, budget=args.budget, policy=args.policy)
    insights = generate(source.data, personas=[Persona(p) for p in args.persona] if args.persona else None,
                        min_priority=Priority(args.min_priority) if args.min_priority else None,
                        categories=[Category(c) for c in args.category] if args.category else None, since=since)
    if args.output == "json":
        print_json(insights_to_json(insights, source))
    else:
        console.print(f"[dim]{escape(source.description)}[/]")
        console.print(insights_table(insights, title=f"{len(insights)} insights"))
    return 0


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), datetime.min.time(), UTC)
    except ValueError:
        raise ConfigError(f"--since {text!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-01",
                          field="--since") from None


def insight_to_json(i: Insight) -> dict[str, Any]:
    return {"id": i.id, "persona": i.persona.value, "title": i.title, "description": i.description,
            "priority": i.priority.value, "category": i.category.value, "impact": _number(i.impact),
            "recommendation": i.recommendation, "confidence": i.confidence, "generator": i.generator,
            "created": i.created.isoformat() if i.created else None, "team": i.team,
            "metadata": {k: _plain(v) for k, v in i.metadata.items()},
            "evidence": [{"kind": e.kind, "name": e.name, "url": e.url} for e in i.evidence]}


def insights_to_json(insights: list[Insight], source: Source) -> dict[str, Any]:
    now = source.data.now
    return {"apiVersion": API_VERSION, "source": source.description, "generated": now.isoformat() if now else None,
            "insights": [insight_to_json(i) for i in insights]}


def _number(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 2)


def _plain(value: object) -> object:
    """Metadata as JSON: numpy scalars to Python, non-finite numbers to null, lists and dicts inside."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, float, np.number)):
        number = float(value)
        return (int(number) if isinstance(value, (int, np.integer)) else number) if np.isfinite(number) else None
    return str(value)


def insights_table(insights: list[Insight], *, title: str, describe: bool = True) -> Table:
    table = Table(title=title, header_style="bold", show_lines=describe)
    for name in ("Priority", "Persona", "Category", "Insight", "$/month"):
        table.add_column(name, justify="right" if name == "$/month" else "left", overflow="fold")
    for i in insights:
        text = f"[bold]{escape(i.title)}[/]"
        if describe:
            text += f"\n{escape(i.description)}" + (f"\n[italic]{escape(i.recommendation)}[/]"
                                                    if i.recommendation else "")
        table.add_row(f"[{_STYLE[i.priority]}]{i.priority.value}[/]", i.persona.value, i.category.value, text,
                      usd(i.impact) if i.impact is not None else "")
    return table
