"""Finance analyst insights: forecast vs budget per budget, month-end and quarter-end projections, the cost
breakdown and its trend."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from ..models.insights import Category, Evidence, Insight, Persona, Priority
from ..money import signed_usd, usd
from .common import DAYS_PER_MONTH, by_budget_state, by_impact, insight_id, percent, signed_percent
from .data import InsightData

FINANCE = Persona.FINANCE
BREAKDOWN_ROWS = 5


def budget_forecasts(data: InsightData) -> list[Insight]:
    """Each budget: spend so far, the forecast to the period's end with its 95% interval, the variance."""
    out = []
    for b in data.budgets:
        share = percent(b.variance, b.amount)
        text = (f"{b.name} ({b.period}): {usd(b.spend)} spent of {usd(b.amount)}; forecast {usd(b.forecast)} by "
                f"{(b.period_end - timedelta(days=1)).isoformat()} (95% interval {usd(b.lower)} .. {usd(b.upper)}), "
                f"{signed_usd(b.variance)} ({signed_percent(share)}) against the amount; state {b.state}.")
        if b.forecast <= b.amount < b.upper:
            text += " The upper end of the interval passes the amount."
        out.append(Insight(insight_id("finance.budget-forecast", f"{b.name}:{b.period}"), FINANCE,
                           f"{b.name}: forecast {signed_percent(share)} vs budget", text, by_budget_state(b.state),
                           Category.BUDGET, impact=max(b.variance, 0.0),
                           recommendation="Agree a reduction with the team or revise the amount." if b.variance > 0
                           else "", generator="finance.budget-forecast", created=data.now, team=b.team or data.team,
                           metadata={"amount": b.amount, "spend": b.spend, "forecast": b.forecast, "lower": b.lower,
                                     "upper": b.upper, "variance": b.variance, "state": b.state},
                           evidence=(Evidence("Budget", b.name),)))
    return out


def projections(data: InsightData) -> list[Insight]:
    """Month-end and quarter-end spend: actual days so far plus the forecast for the rest."""
    if data.spend is None or data.forecast is None or not data.forecast.points:
        return []
    last = data.spend.end - timedelta(days=1)                 # the last day with actual spend
    daily = {p.day: p for p in data.forecast.points}
    out = []
    for label, start, end in (("month", _month_start(last), _month_end(last)),
                              ("quarter", _quarter_start(last), quarter_end(last))):
        days = [start + timedelta(days=i) for i in range((end - start).days)]
        future = [d for d in days if d > last]
        if any(d not in daily for d in future):
            continue                                          # the forecast does not reach the period's end
        actual = data.spend.total(start, last + timedelta(days=1))
        value = actual + sum(daily[d].value for d in future)
        lower = actual + sum(daily[d].lower for d in future)
        upper = actual + sum(daily[d].upper for d in future)
        elapsed = len(days) - len(future)
        measured = int(np.isfinite(data.spend.values[max(0, (start - data.spend.start).days):]).sum())
        gap = f" ({measured} of them measured)" if measured < elapsed else ""
        text = (f"{label.capitalize()} to {(end - timedelta(days=1)).isoformat()}: {usd(actual)} in the "
                f"{elapsed} days so far{gap}, projected {usd(value)} at the end (95% interval {usd(lower)} .. "
                f"{usd(upper)}; {data.forecast.method}"
                + (f", back-tested error {100 * data.forecast.backtest_mape:.1f}%" if data.forecast.backtest_mape
                   is not None else "") + ").")
        out.append(Insight(insight_id("finance.projection", f"{label}:{start.isoformat()}"), FINANCE,
                           f"{label.capitalize()}-end projection {usd(value)}", text, Priority.LOW, Category.FORECAST,
                           generator="finance.projection", created=data.now, team=data.team,
                           metadata={"period": label, "start": start.isoformat(), "end": end.isoformat(),
                                     "actual": actual, "projected": value, "lower": lower, "upper": upper}))
    return out


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quarter_end(day: date) -> date:
    start = _quarter_start(day)
    return date(start.year + (start.month + 3 > 12), (start.month + 2) % 12 + 1, 1)


def breakdown(data: InsightData) -> list[Insight]:
    """The largest cost groups (namespace, else team) with their share and last week's change; the biggest mover."""
    grouping = next((g for g in ("namespace", "team") if data.spend_by.get(g)), None)
    if grouping is None:
        return []
    rows = []
    for key, series in data.spend_by[grouping].items():
        values = series.values
        total = float(np.nansum(values))
        last, before = _week(values, 1), _week(values, 2)
        rows.append((key, total, last, before))
    grand = sum(r[1] for r in rows)
    if grand <= 0:
        return []
    rows.sort(key=lambda r: -r[1])
    parts = [f"{k} {usd(t)} ({percent(t, grand):.0f}%)" for k, t, _, _ in rows[:BREAKDOWN_ROWS]]
    movers = [(k, (a - b) * 7) for k, _, a, b in rows if a is not None and b is not None]
    text = f"By {grouping}: " + ", ".join(parts) + f" of {usd(grand)}."
    impact = None
    if movers:
        key, delta = max(movers, key=lambda m: abs(m[1]))
        text += f" Biggest weekly mover: {key} {signed_usd(delta)} against the week before."
        impact = delta / 7 * DAYS_PER_MONTH if delta > 0 else None
    return [Insight(insight_id("finance.breakdown", grouping), FINANCE, f"Cost by {grouping}: {rows[0][0]} leads "
                    f"with {percent(rows[0][1], grand):.0f}%", text, by_impact(impact) if impact else Priority.LOW,
                    Category.BUDGET, impact=impact, generator="finance.breakdown", created=data.now, team=data.team,
                    metadata={"grouping": grouping, "total": grand,
                              "rows": [{"key": k, "cost": t} for k, t, _, _ in rows[:BREAKDOWN_ROWS]]})]


def _week(values: np.ndarray, back: int) -> float | None:
    """Mean of the ``back``-th last week (1: the last 7 days); None when it has no data."""
    end = len(values) - 7 * (back - 1)
    week = values[max(0, end - 7):end]
    return float(np.nanmean(week)) if len(week) == 7 and np.isfinite(week).any() else None


GENERATORS = {"finance.budget-forecast": budget_forecasts, "finance.projection": projections,
              "finance.breakdown": breakdown}
