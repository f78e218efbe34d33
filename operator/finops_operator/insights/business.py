"""Business lead insights: cost growth against business growth (elasticity), capacity headroom, cost per unit
over time.

Elasticity is ``ln(cost_last / cost_first) / ln(units_last / units_first)`` over the first and last whole
weeks the spend and the business series share: below 1 cost grows sub-linearly with the business (scale
pays), above 1 it grows faster than the business.
"""
from __future__ import annotations

import math

import numpy as np

from ..models.costs import ChargeKind
from ..models.insights import Category, Insight, Persona, Priority
from ..money import usd
from .common import (DAYS_PER_MONTH, aligned, by_impact, insight_id, percent, signed_percent, singular,
                     unit_usd, weekly_means)
from .data import InsightData

BUSINESS = Persona.BUSINESS
TIGHT, LOOSE = 15.0, 50.0        # headroom (% of allocatable) under TIGHT is a risk, over LOOSE paid-for idle


def _weeks(data: InsightData, units_name: str) -> tuple[np.ndarray, np.ndarray] | None:
    if data.spend is None or units_name not in data.business:
        return None
    _, cost, units = aligned(data.spend, data.business[units_name])
    wc, wu = weekly_means(cost), weekly_means(units)
    ok = np.isfinite(wc) & np.isfinite(wu) & (wc > 0) & (wu > 0)
    return (wc[ok], wu[ok]) if ok.sum() >= 2 else None


def elasticity(data: InsightData) -> list[Insight]:
    """Per business series: how cost grew against the business between the first and the last week."""
    out = []
    for name in sorted(data.business):
        weeks = _weeks(data, name)
        if weeks is None:
            continue
        cost, units = weeks
        cost_growth, unit_growth = cost[-1] / cost[0] - 1, units[-1] / units[0] - 1
        e = math.log(cost[-1] / cost[0]) / math.log(units[-1] / units[0]) if abs(unit_growth) > 0.01 else None
        verdict = _verdict(cost_growth, unit_growth, e)
        text = (f"Over {len(cost)} weeks cost moved {signed_percent(100 * cost_growth)} while {name} moved "
                f"{signed_percent(100 * unit_growth)}" + (f" (elasticity {e:.2f})" if e is not None else "")
                + f": {verdict}.")
        bad = cost_growth > 0.05 and (e is None or e > 1)
        out.append(Insight(insight_id("business.elasticity", name), BUSINESS,
                           f"Cost {signed_percent(100 * cost_growth)} vs {name} {signed_percent(100 * unit_growth)}",
                           text, Priority.MEDIUM if bad else Priority.LOW, Category.EFFICIENCY,
                           recommendation="Find what grew without the business (finops insights --persona engineer)."
                           if bad else "", generator="business.elasticity", created=data.now, team=data.team,
                           metadata={"unit": name, "cost_growth": cost_growth, "unit_growth": unit_growth,
                                     "elasticity": e, "sub_linear": e is not None and e < 1}))
    return out


def _verdict(cost_growth: float, unit_growth: float, e: float | None) -> str:
    if e is None:
        return "the business was flat, so cost changes are not explained by it"
    if unit_growth > 0:
        return "sub-linear: each unit got cheaper as the business grew" if e < 1 else \
            "super-linear: cost grew faster than the business"
    return "cost fell faster than the business" if e > 1 else "cost fell slower than the business"


def unit_cost_trend(data: InsightData) -> list[Insight]:
    """Cost per unit week by week (oldest first) and its change from the first week to the last."""
    out = []
    for name in sorted(data.business):
        weeks = _weeks(data, name)
        if weeks is None:
            continue
        per_unit = weeks[0] / weeks[1]
        change = percent(per_unit[-1] - per_unit[0], per_unit[0])
        series = " -> ".join(unit_usd(v) for v in per_unit)
        text = f"Weekly cost per {singular(name)}: {series} ({signed_percent(change)})."
        out.append(Insight(insight_id("business.unit-cost", name), BUSINESS, f"Cost per "
                           f"{singular(name)} {signed_percent(change)} over {len(per_unit)} weeks", text,
                           Priority.MEDIUM if change > 10 else Priority.LOW, Category.EFFICIENCY,
                           generator="business.unit-cost", created=data.now, team=data.team,
                           metadata={"unit": name, "weekly_cost_per_unit": [float(v) for v in per_unit],
                                     "change_percent": change}))
    return out


def headroom(data: InsightData) -> list[Insight]:
    """Allocatable capacity against what the running pods request, for CPU and memory."""
    state = data.state
    if state is None or not state.nodes:
        return []
    nodes = {n.name for n in state.nodes}
    cpu_alloc = sum(n.allocatable_cpu for n in state.nodes)
    mem_alloc = sum(n.allocatable_memory for n in state.nodes)
    pods = [p for p in state.pods if p.node in nodes and p.phase == "Running"]
    cpu_req, mem_req = sum(p.cpu_request for p in pods), sum(p.memory_request for p in pods)
    if cpu_alloc <= 0 or mem_alloc <= 0:
        return []
    cpu_free, mem_free = 100 - percent(cpu_req, cpu_alloc), 100 - percent(mem_req, mem_alloc)
    tight = min(cpu_free, mem_free)
    text = (f"{len(state.nodes)} nodes: {cpu_req:.1f} of {cpu_alloc:.1f} CPU cores requested ({cpu_free:.0f}% free), "
            f"{mem_req / 2**30:.1f} of {mem_alloc / 2**30:.1f} GiB memory ({mem_free:.0f}% free).")
    idle = _idle_monthly(data)
    if tight < TIGHT:
        priority, fix = Priority.HIGH if tight < 5 else Priority.MEDIUM, \
            "Raise the node group's maximum before the next growth step; scheduling fails at 0%."
    elif tight > LOOSE:
        priority = by_impact(idle) if idle else Priority.LOW
        fix = "Consolidate nodes: more than half the capacity is unrequested."
        if idle:
            text += f" Idle capacity costs {usd(idle)}/month."
    else:
        priority, fix = Priority.LOW, ""
    return [Insight(insight_id("business.headroom", state.cluster), BUSINESS,
                    f"Capacity headroom {tight:.0f}% ({'CPU' if cpu_free <= mem_free else 'memory'} bound)", text,
                    priority, Category.EFFICIENCY, impact=idle if tight > LOOSE else None, recommendation=fix,
                    generator="business.headroom", created=data.now, team=data.team,
                    metadata={"cpu_free_percent": cpu_free, "memory_free_percent": mem_free,
                              "cpu_requested": cpu_req, "cpu_allocatable": cpu_alloc})]


def _idle_monthly(data: InsightData) -> float | None:
    if data.allocation is None or not data.days:
        return None
    idle = sum(c.cost for c in data.allocation.charges if c.kind is ChargeKind.IDLE)
    return idle / data.days * DAYS_PER_MONTH


GENERATORS = {"business.elasticity": elasticity, "business.unit-cost": unit_cost_trend,
              "business.headroom": headroom}
