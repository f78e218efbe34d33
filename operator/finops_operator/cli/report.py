"""`finops report`: the weekly or monthly FinOps report as HTML, JSON or Markdown.

    finops report [--period weekly|monthly] [--output html|json|markdown] --out FILE [--persona P]
                  [--snapshot FILE | --kubeconfig [PATH]] [--policy FILE]

Offline (default: the demo's bundled scenario through the simulator; or ``--snapshot FILE``): the data
``finops insights`` assembles (``cli.insights.offline_data``: daily spend, forecast, anomalies, insights),
cost by team and namespace, health scores, and a ledger with a SIMULATED history (:func:`simulated_ledger`,
and for the demo scenario a $1,400/month cluster budget:
no pull request exists offline, so the scan's findings are advanced through proposed / merged / verified /
rejected on made-up dates; the report says so). Live (``--kubeconfig``): the cluster's SavingsOpportunity
objects (their real history) and the Budgets' evaluated status; no cost data.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..errors import ConfigError
from ..ledger import Ledger
from ..reports import BudgetLine, Report, ReportData, build_report, render_html, render_json, render_markdown
from ..settings import PolicySettings
from .common import DEMO_SCENARIO, load_policy_file, progress

SIMULATED_NOTE = ("This is the demo: the cluster is simulated and so is the ledger's history (detection dates spread "
                  "over eight weeks; pull requests opened, merged, verified at 85% of the estimate, or rejected on "
                  "made-up dates; the demo's budget is $1,400 a month). Nothing here was measured.")
DEMO_REPO = "github.com/example/finops-demo-gitops"
DEMO_BUDGET = 1400.0            # USD/month: the demo's cluster budget; November is forecast at about $1,480


def simulated_ledger(findings: list[Any], decisions: dict[str, Any], now: datetime) -> Ledger:
    """The scan's findings with a made-up but lawful history, the same every time (by finding id).

    Finding i (ids sorted) is first seen ``(i % 8) * 7 + 3`` days before ``now``; an allowed one then follows
    ``i % 5``: 0 proposed a day later, merged ``2 + i % 4`` days after, verified 7 days after the merge at 85%
    of its estimate; 1 proposed and merged two days ago (not verified yet); 2 proposed and rejected three days
    later; 3 proposed and still open; 4 left detected. Blocked and approval-needing ones stay as they are.
    """
    ledger = Ledger()
    for i, finding in enumerate(sorted({f.id: f for f in findings}.values(), key=lambda f: f.id)):
        seen = now - timedelta(days=(i % 8) * 7 + 3)
        ledger.observe([finding], decisions, seen, covered=lambda _: False)
        opp = ledger.get(finding.id)
        if opp.state.value != "Detected":
            continue
        step, opened = i % 5, seen + timedelta(days=1)
        if step == 4:
            continue
        ledger.proposed(opp.id, f"https://{DEMO_REPO}/pull/{i + 1}", i + 1, f"finops/demo-{i + 1}", f"cs-{i + 1}",
                        opened)
        if step == 0:
            merged = min(opened + timedelta(days=2 + i % 4), now - timedelta(days=8))
            ledger.merged(opp.id, max(merged, opened))
            ledger.verify(opp.id, 0.85 * opp.estimated_monthly_savings, max(merged, opened) + timedelta(days=7),
                          timedelta(days=7))
        elif step == 1:
            ledger.merged(opp.id, max(opened, now - timedelta(days=2)))
        elif step == 2:
            ledger.closed(opp.id, min(opened + timedelta(days=3), now))
    return ledger


def offline_report_data(source: Any, settings: PolicySettings, *, name: str, business: Any = None, seed: int = 0,
                        result: Any = None, budget: float | None = None) -> ReportData:
    """Everything the report draws on for a Simulation or a Snapshot (see the module docstring)."""
    from ..guardrails import GuardrailContext
    from ..health import health_scores
    from ..insights import generate
    from ..pipeline import scan
    from .costs import CostData, allocate_offline, build_report as cost_report
    from .health import offline_health_data
    from .insights import _state, offline_data

    window = source.state.window
    now = window.end
    if result is None:
        result = scan(_state(source, settings), settings, context=GuardrailContext(now=now + timedelta(hours=1)))
    ledger = simulated_ledger(result.findings, result.decisions, now)
    insight_data = offline_data(source, settings, business=business, seed=seed, scanned=result, budget=budget)
    insight_data.opportunities = ledger.opportunities
    health = offline_health_data(source, settings, result=result)
    health.opportunities = ledger.opportunities
    costs = CostData(description=name, now=now, span=(window.start, window.end),
                     allocate=lambda w: allocate_offline(source, settings, w))
    days = f"{round((window.end - window.start) / timedelta(days=1))}d"
    return ReportData(
        source=f"{name} ({source.state.cluster}, {source.state.region}; simulated history)",
        opportunities=ledger.opportunities,
        costs_by_team=cost_report(costs, by="team", window_text=days, top=10),
        costs_by_namespace=cost_report(costs, by="namespace", window_text=days, top=10),
        budgets=[replace(BudgetLine.of_view(b), name="cluster budget (demo)") for b in insight_data.budgets], spend=insight_data.spend,
        forecast=insight_data.forecast, anomalies=list(insight_data.anomalies),
        health=health_scores(health, "team", settings.health.weights), insights=generate(insight_data),
        notes=[SIMULATED_NOTE])


def live_report_data(args: argparse.Namespace) -> tuple[ReportData, datetime]:
    """The cluster's SavingsOpportunity objects and Budgets (status) -> ReportData."""
    from ..api.opportunities import read_ledger
    from ..api.reportgen import budget_lines
    from .live import read_live_objects, utcnow
    listed, budgets = read_live_objects(args)
    read = read_ledger(listed)
    notes = [f"SavingsOpportunity {name} skipped: {exc}" for name, exc in read.unreadable.items()]
    return ReportData(source=f"the live cluster of {args.kubeconfig or 'the default kubeconfig'}",
                      opportunities=read.ledger.opportunities, budgets=budget_lines(budgets),
                      notes=notes), utcnow()


def render(report: Report, output: str) -> str:
    if output == "html":
        return render_html(report)
    if output == "json":
        return json.dumps(render_json(report), indent=2) + "\n"
    return render_markdown(report)


def demo_report(source: Any, settings: PolicySettings, spec: Any, result: Any, out: Path) -> Path:
    """`finops demo`'s report.html: the weekly report of the demo cluster, for the CFO."""
    data = offline_report_data(source, settings, name="the demo cluster", business=spec.business, seed=spec.seed,
                               result=result, budget=DEMO_BUDGET)
    out.write_text(render_html(build_report(data, period="weekly", end=source.state.window.end)))
    return out


def run_report(args: argparse.Namespace, console: Console) -> int:
    settings = load_policy_file(args.policy)
    if args.kubeconfig is not None:
        data, end = live_report_data(args)
    else:
        with progress(console) as bar:
            if args.snapshot is None:
                from ..simulator import load_scenario, simulate
                bar.add_task("Simulating the demo cluster and its ledger", total=None)
                spec = load_scenario(DEMO_SCENARIO)
                source, name, business, seed = simulate(spec), "the demo cluster", spec.business, spec.seed
                budget: float | None = DEMO_BUDGET
            else:
                from ..snapshot import load_snapshot
                bar.add_task(f"Loading {args.snapshot.name}", total=None)
                source, name, business, seed = load_snapshot(args.snapshot), str(args.snapshot), None, 0
                budget = None
            data = offline_report_data(source, settings, name=name, business=business, seed=seed, budget=budget)
            end = source.state.window.end
    report = build_report(data, period=args.period, end=end, persona=args.persona)
    try:
        args.out.write_text(render(report, args.output))
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {args.out}: {exc.strerror}; pass a writable --out FILE",
                          field="--out") from None
    console.print(f"Wrote the {args.period} {args.output} report ({len(report.sections)} sections) to "
                  f"[bold]{escape(str(args.out))}[/]")
    return 0


__all__ = ["SIMULATED_NOTE", "demo_report", "offline_report_data", "run_report", "simulated_ledger"]
