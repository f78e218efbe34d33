"""STUB of part 1's ``finops_operator.reports`` API (branch ``report``), used ONLY until that branch merges.

The lead deletes this module (and the ``except ImportError`` in :mod:`.reportgen`) when ``reports/`` lands:
the real package has the same names (``ReportData``, ``BudgetLine``, ``build_report``, ``render_html``,
``render_json``, ``render_markdown``, ``Report.headline``). Minimal on purpose: a headline from the ledger,
a plain HTML page with one inline SVG bar, the JSON and a Markdown summary, enough for the FinOpsReport
resource (storage, serving, schedule, delivery) to be built and tested end to end.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..money import usd


@dataclass(frozen=True, slots=True)
class BudgetLine:
    name: str
    amount: float
    spend: float
    state: str
    forecast: float | None = None
    team: str | None = None
    period: str = ""


@dataclass(slots=True)
class ReportData:
    source: str = "unknown source"
    opportunities: list[Any] = field(default_factory=list)
    budgets: list[BudgetLine] = field(default_factory=list)
    health: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Report:
    period: str
    start: datetime
    end: datetime
    persona: str
    source: str
    headline: dict[str, Any]


def build_report(data: ReportData, *, period: str, end: datetime, persona: str = "cfo") -> Report:
    start = end - (timedelta(days=7) if period == "weekly" else timedelta(days=30))
    live = [o for o in data.opportunities if o.state.value not in ("Rejected", "Superseded")]
    headline = {"currency": "USD", "opportunities": len(live),
                "estimatedMonthly": round(sum(o.estimated_monthly_savings for o in live), 2),
                "realizedMonthly": round(sum(o.realized_monthly_savings or 0 for o in live), 2)}
    return Report(period, start, end, persona, data.source, headline)


def render_json(report: Report) -> dict[str, Any]:
    return {"schema": "finops.report/v1", "period": report.period, "start": report.start.isoformat(),
            "end": report.end.isoformat(), "persona": report.persona, "source": report.source,
            "headline": report.headline}


def render_markdown(report: Report) -> str:
    h = report.headline
    return (f"**FinOps {report.period} report** ({report.start:%Y-%m-%d} to {report.end:%Y-%m-%d})\n\n"
            f"- {h['opportunities']} open opportunities, {usd(h['estimatedMonthly'])}/month estimated\n"
            f"- {usd(h['realizedMonthly'])}/month realized\n")


def render_html(report: Report) -> str:
    h = report.headline
    width = 10 + min(300, int(h["estimatedMonthly"]))
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>FinOps report</title>"
            "<style>body{font-family:sans-serif}</style></head><body>"
            f"<h1>FinOps {html.escape(report.period)} report</h1><p>{html.escape(report.source)}</p>"
            f"<p>{h['opportunities']} opportunities, {html.escape(usd(h['estimatedMonthly']))}/month</p>"
            f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"320\" height=\"20\"><rect width=\"{width}\" "
            "height=\"20\" fill=\"#2a7\"/></svg></body></html>")
