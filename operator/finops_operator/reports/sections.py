"""The report's sections beyond the ledger: spend and budgets, forecast and anomalies, health, insights."""
from __future__ import annotations

from datetime import datetime, timedelta

from ..money import usd
from .data import ReportData
from .model import Chart, Section, Series, Table

TOP_INSIGHTS = 5
MAX_ANOMALIES = 10


def other_sections(data: ReportData, *, persona: str, start: datetime, end: datetime) -> list[Section | None]:
    return [_spend(data), _budgets(data), _forecast(data, end), _anomalies(data), _health(data),
            _insights(data, persona)]


def _spend(data: ReportData) -> Section | None:
    reports = [r for r in (data.costs_by_team, data.costs_by_namespace) if r is not None and r.rows]
    if not reports:
        return None
    charts, tables, out = [], [], {}
    budget_of = {b.team: b for b in data.budgets if b.team}
    for r in reports:
        w = r.window
        rows = tuple((row.label, row.cost, round(row.cost / r.total * 100, 1) if r.total else None,
                      *((budget_of[row.key].state,) if r.by == "team" and row.key in budget_of else
                        (("",) if r.by == "team" else ())))
                     for row in r.rows)
        columns = (r.by, "cost", "percent") + (("budget",) if r.by == "team" else ())
        caption = f"Spend by {r.by}, {w.start:%Y-%m-%d} to {w.end:%Y-%m-%d} (total {usd(r.total)})"
        tables.append((caption, Table(columns, rows, money=("cost",))))
        charts.append(Chart("bar", f"Spend by {r.by} (USD, {w.hours / 24:.0f} days)",
                            tuple(row.label for row in r.rows), (Series("USD", tuple(row.cost for row in r.rows)),)))
        out[r.by] = {"window": {"start": w.start.isoformat(), "end": w.end.isoformat()}, "total": round(r.total, 2),
                     "rows": [{"key": row.key, "label": row.label, "kind": row.kind, "cost": round(row.cost, 2)}
                              for row in r.rows]}
    return Section("spend", "Spend by team and namespace", (), tuple(charts), tuple(tables), out)


def _budgets(data: ReportData) -> Section | None:
    if not data.budgets:
        return None
    rows = tuple((b.name, b.team or "", b.period, b.amount, b.spend, b.forecast, b.state) for b in data.budgets)
    over = [b for b in data.budgets if b.state != "OK"]
    lines = tuple(f"{b.name}: {b.state} (spent {usd(b.spend)} of {usd(b.amount)}"
                  + (f", forecast {usd(b.forecast)})" if b.forecast is not None else ")") for b in over)
    chart = Chart("bar", "Budget use (% of the amount spent)", tuple(b.name for b in data.budgets),
                  (Series("percent", tuple(round(b.spend / b.amount * 100, 1) if b.amount else None
                                           for b in data.budgets)),), unit="percent")
    return Section("budgets", "Budgets", lines or ("Every budget is on track.",), (chart,),
                   (("Budget status", Table(("budget", "team", "period", "amount", "spent", "forecast", "state"), rows,
                                            money=("amount", "spent", "forecast"))),),
                   {"budgets": [{"name": b.name, "team": b.team, "period": b.period, "amount": b.amount,
                                 "spend": b.spend, "forecast": b.forecast, "state": b.state} for b in data.budgets]})


def _forecast(data: ReportData, end: datetime) -> Section | None:
    f = data.forecast
    if f is None or not f.points:
        return None
    history = []
    if data.spend is not None:
        values = data.spend.values
        history = [(data.spend.start + timedelta(days=i), float(v)) for i, v in enumerate(values)][-28:]
    points = f.points[:62]
    labels = tuple(f"{d:%m-%d}" for d, _ in history) + tuple(f"{p.day:%m-%d}" for p in points)
    pad = (None,) * len(points)
    series = (Series("spend", tuple(v if v == v else None for _, v in history) + pad),
              Series("forecast", (None,) * len(history) + tuple(p.value for p in points)),
              Series("upper 95%", (None,) * len(history) + tuple(p.upper for p in points)))
    total = sum(p.value for p in f.points)
    lines = (f"Forecast ({f.method}) {usd(total)} over the next {len(f.points)} days"
             + (f", back-tested error {f.backtest_mape:.0%}" if f.backtest_mape is not None else "") + ".",)
    return Section("forecast", "Spend forecast", lines, (Chart("line", "Daily spend and forecast (USD/day)", labels,
                                                               series, unit="USD"),),
                   data={"method": f.method, "days": len(f.points), "total": round(total, 2),
                         "backtestMape": f.backtest_mape,
                         "points": [{"day": p.day.isoformat(), "value": round(p.value, 2), "lower": round(p.lower, 2),
                                     "upper": round(p.upper, 2)} for p in f.points]})


def _anomalies(data: ReportData) -> Section | None:
    if not data.anomalies:
        return None
    shown = sorted(data.anomalies, key=lambda a: (a.start, a.end), reverse=True)[:MAX_ANOMALIES]
    rows = tuple((f"{a.start}..{a.end}", a.kind.value, a.severity.value, a.expected, a.actual, a.driver or "")
                 for a in shown)
    return Section("anomalies", "Cost anomalies", (f"{len(data.anomalies)} anomalies in the spend history.",),
                   tables=(("Newest first", Table(("days", "kind", "severity", "expected", "actual", "driver"), rows,
                                                  money=("expected", "actual"))),),
                   data={"anomalies": [{"start": a.start.isoformat(), "end": a.end.isoformat(), "kind": a.kind.value,
                                        "severity": a.severity.value, "expected": round(a.expected, 2),
                                        "actual": round(a.actual, 2), "driver": a.driver} for a in shown]})


def _health(data: ReportData) -> Section | None:
    scored = [h for h in data.health if h.score is not None]
    if not scored:
        return None
    rows = tuple((h.subject, h.by, h.score, h.grade, h.band, h.trend.direction if h.trend else "") for h in scored)
    chart = Chart("bar", "Health score (0-100)", tuple(h.subject for h in scored),
                  (Series("score", tuple(h.score for h in scored)),), unit="score")
    return Section("health", "Health scores", (), (chart,),
                   (("Worst first", Table(("subject", "by", "score", "grade", "band", "trend"), rows)),),
                   {"scores": [{"subject": h.subject, "by": h.by, "score": h.score, "grade": h.grade, "band": h.band}
                               for h in scored]})


def _insights(data: ReportData, persona: str) -> Section | None:
    if not data.insights:
        return None
    from ..insights import filter_insights, top_per_persona
    mine = [i for i in filter_insights(data.insights) if i.persona.value == persona][:TOP_INSIGHTS]
    others = [i for p, i in top_per_persona(data.insights).items() if p.value != persona]
    chosen = mine + others
    rows = tuple((i.priority.value, i.persona.value, i.title, i.impact, i.recommendation) for i in chosen)
    return Section("insights", f"Top insights (for the {persona}, then the top one of each other persona)", (),
                   tables=(("Highest priority first", Table(("priority", "persona", "insight", "impact",
                                                             "recommendation"), rows, money=("impact",))),),
                   data={"insights": [{"id": i.id, "persona": i.persona.value, "priority": i.priority.value,
                                       "title": i.title, "impact": i.impact, "recommendation": i.recommendation}
                                      for i in chosen]})
