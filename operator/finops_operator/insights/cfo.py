"""CFO insights: spend trend and efficiency, budget variance, unit economics, savings and ROI, commitments."""
from __future__ import annotations

import numpy as np

from ..models.costs import ChargeKind, CostCategory
from ..models.insights import Category, Evidence, Insight, Persona, Priority
from ..money import signed_usd, usd
from .common import (DAYS_PER_MONTH, aligned, by_budget_state, by_impact, highest, insight_id,
                     percent, signed_percent, singular, step_up,
                     unit_usd, weekly_means)
from .data import InsightData

CFO = Persona.CFO
DONE_STATES = ("Merged", "Verified")
SP_LINE_TYPES = ("SavingsPlanCoveredUsage", "DiscountedUsage")     # CUR: Savings Plans / Reserved Instances


def spend_trend(data: InsightData) -> list[Insight]:
    """Last week's daily spend against the week before, with the run rate and the idle share of the window."""
    if data.spend is None or len(data.spend.values) < 14:
        return []
    weeks = weekly_means(data.spend.values)
    before, last = float(weeks[-2]), float(weeks[-1])
    if not (np.isfinite(before) and np.isfinite(last)) or before <= 0:
        return []
    change = percent(last - before, before)
    monthly_delta = (last - before) * DAYS_PER_MONTH
    text = (f"Daily spend averaged {usd(last)} over the last 7 days against {usd(before)} the week before "
            f"({signed_percent(change)}); run rate {usd(last * DAYS_PER_MONTH)}/month "
            f"({signed_usd(monthly_delta)}/month).")
    idle = _idle_share(data)
    if idle is not None:
        text += f" {idle:.1f}% of the allocated cost is idle capacity no workload requested."
    priority = Priority.HIGH if abs(change) >= 25 else Priority.MEDIUM if abs(change) >= 10 else Priority.LOW
    return [Insight(insight_id("cfo.spend-trend", "cluster"), CFO, f"Spend {signed_percent(change)} week over week",
                    text, priority, Category.EFFICIENCY, impact=monthly_delta,
                    recommendation="Review the namespaces that grew most (finops insights --persona finance)."
                    if change > 10 else "", generator="cfo.spend-trend", created=data.now, team=data.team,
                    metadata={"last_week_daily": last, "previous_week_daily": before, "change_percent": change,
                              "run_rate_monthly": last * DAYS_PER_MONTH, "idle_percent": idle})]


def _idle_share(data: InsightData) -> float | None:
    if data.allocation is None or data.allocation.total <= 0:
        return None
    idle = sum(c.cost for c in data.allocation.charges if c.kind is ChargeKind.IDLE)
    return percent(idle, data.allocation.total)


def budget_variance(data: InsightData) -> list[Insight]:
    """All budgets together: forecast to the period's end against the amounts."""
    if not data.budgets:
        return []
    amount = sum(b.amount for b in data.budgets)
    forecast = sum(b.forecast for b in data.budgets)
    over = [b for b in data.budgets if b.forecast > b.amount]
    variance = forecast - amount
    worst = highest(*(by_budget_state(b.state) for b in data.budgets))
    names = ", ".join(f"{b.name} ({signed_usd(b.variance)})" for b in sorted(over, key=lambda b: -b.variance)[:3])
    text = (f"{len(over)} of {len(data.budgets)} budgets are forecast over their amount; together they are forecast "
            f"at {usd(forecast)} against {usd(amount)} ({signed_usd(variance)}, "
            f"{signed_percent(percent(variance, amount))}).") + (f" Over: {names}." if names else "")
    return [Insight(insight_id("cfo.budget-variance", "all"), CFO, f"Budgets forecast {signed_usd(variance)} "
                    f"against plan", text, worst, Category.BUDGET, impact=max(variance, 0.0),
                    recommendation="Ask the owners of the budgets over plan for a reduction or a revised amount."
                    if over else "", generator="cfo.budget-variance", created=data.now, team=data.team,
                    metadata={"amount": amount, "forecast": forecast, "over": len(over)},
                    evidence=tuple(Evidence("Budget", b.name) for b in over))]


def unit_economics(data: InsightData) -> list[Insight]:
    """Cost per business unit (orders, active users ...) over the days spend and the series share."""
    if data.spend is None:
        return []
    out = []
    for name, units in sorted(data.business.items()):
        _, cost, count = aligned(data.spend, units)
        total_units = float(np.nansum(count)) if len(count) else 0.0
        if total_units <= 0:
            continue
        total_cost = float(np.nansum(cost))
        per_unit = total_cost / total_units
        days = int(np.isfinite(cost).sum())
        text = (f"{usd(total_cost)} of spend over {days} days served {total_units:,.0f} {name}: "
                f"{unit_usd(per_unit)} per {singular(name)}.")
        out.append(Insight(insight_id("cfo.unit-economics", name), CFO, f"Cost per {singular(name)}: "
                           f"{unit_usd(per_unit)}", text, Priority.LOW, Category.EFFICIENCY,
                           generator="cfo.unit-economics", created=data.now, team=data.team,
                           metadata={"unit": name, "cost": total_cost, "units": total_units, "cost_per_unit": per_unit,
                                     "days": days}))
    return out


def savings_roi(data: InsightData) -> list[Insight]:
    """Savings the merged changes were estimated to bring against what was measured after them."""
    done = [o for o in data.opportunities if o.state.value in DONE_STATES]
    if not done:
        return []
    estimated = sum(o.estimated_monthly_savings for o in done)
    verified = [o for o in done if o.realized_monthly_savings is not None]
    realized = sum(o.realized_monthly_savings or 0.0 for o in verified)
    est_verified = sum(o.estimated_monthly_savings for o in verified)
    rate = percent(realized, est_verified) if est_verified else None
    baseline = sum(o.baseline_monthly_cost or 0.0 for o in verified)
    text = (f"{len(done)} merged changes were estimated to save {usd(estimated)}/month; {len(verified)} are verified "
            f"and realize {usd(realized)}/month ({usd(realized * 12)}/year)")
    text += f", {rate:.0f}% of their estimate" if rate is not None else ""
    text += f", {percent(realized, baseline):.1f}% of what those workloads cost before." if baseline else "."
    priority = by_impact(realized)
    if rate is not None and rate < 70:
        priority = step_up(priority)
    return [Insight(insight_id("cfo.savings-roi", "all"), CFO, f"Realized savings {usd(realized)}/month"
                    + (f" ({rate:.0f}% of estimate)" if rate is not None else ""), text, priority,
                    Category.COST_OPTIMIZATION, impact=realized,
                    recommendation="Estimates run ahead of results: review the verified changes that fell short."
                    if rate is not None and rate < 70 else "", generator="cfo.savings-roi", created=data.now,
                    team=data.team, metadata={"estimated": estimated, "realized": realized,
                                              "realization_percent": rate, "verified": len(verified)},
                    evidence=tuple(Evidence("SavingsOpportunity", o.id, o.pr_url) for o in verified))]


def commitment_coverage(data: InsightData) -> list[Insight]:
    """Savings Plans / RI coverage of on-demand node cost, from the bill's lines, and what more coverage would save."""
    if data.bill is None:
        return []
    nodes = [line for line in data.bill.lines if line.category is CostCategory.NODE and line.pricing.value == "effective"]
    list_total = sum(line.list_cost for line in nodes)
    if list_total <= 0:
        return []
    covered = [line for line in nodes if line.line_item_type in SP_LINE_TYPES]
    covered_list = sum(line.list_cost for line in covered)
    coverage = percent(covered_list, list_total)
    discount = 1 - sum(line.cost for line in covered) / covered_list if covered_list else None
    days = (data.bill.end - data.bill.start).total_seconds() / 86400 or 1.0
    uncovered_monthly = (list_total - covered_list) / days * DAYS_PER_MONTH
    text = f"Savings Plans / Reserved Instances cover {coverage:.1f}% of the on-demand node cost in the bill"
    if discount is not None:
        potential = uncovered_monthly * discount * 0.8      # up to 80% of the uncovered steady usage
        text += (f" at {100 * discount:.1f}% off; {usd(uncovered_monthly)}/month of on-demand node cost is "
                 f"uncovered, and covering 80% of it at the same rate would save {usd(potential)}/month.")
    else:
        potential = None
        text += f"; {usd(uncovered_monthly)}/month of on-demand node cost is billed at list price."
    return [Insight(insight_id("cfo.commitments", "nodes"), CFO, f"Commitment coverage {coverage:.0f}% of "
                    f"on-demand nodes", text, by_impact(potential), Category.COST_OPTIMIZATION, impact=potential,
                    recommendation="Size a Compute Savings Plan on the steady part of the uncovered usage."
                    if potential else "", generator="cfo.commitments", created=data.now, team=data.team,
                    metadata={"coverage_percent": coverage, "discount": discount,
                              "uncovered_monthly": uncovered_monthly})]


GENERATORS = {"cfo.spend-trend": spend_trend, "cfo.budget-variance": budget_variance,
              "cfo.unit-economics": unit_economics, "cfo.savings-roi": savings_roi,
              "cfo.commitments": commitment_coverage}
