"""The four categories per subject (team or namespace): value, score and a sentence that explains both.

Each function returns ``{subject: Measure}`` for the subjects it has data for; a subject missing from
the map has no data for that category (it is left out of its score, never scored 0 or 100).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..ledger import DONE, OPEN, OpportunityState
from ..models.costs import Allocation, Charge, ChargeKind, charge_key
from ..money import usd
from ..pricing import HOURS_PER_MONTH
from . import bands
from .inputs import BudgetStanding, HealthData

S = OpportunityState
PROPOSED_EVER = frozenset({S.PROPOSED, S.MERGED, S.VERIFIED, S.REJECTED})
ORPHAN = "orphan-volume"


@dataclass(frozen=True, slots=True)
class Measure:
    value: float
    score: float
    explanation: str


def subject_of_slot(slot, by: str, team_label: str) -> str:
    return slot.namespace if by == "namespace" else slot.team_of(team_label)


def _cost_split(allocation: Allocation | None, by: str) -> dict[str, tuple[float, float]]:
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for c in allocation.charges if allocation is not None else ():
        if c.kind is ChargeKind.CONTAINER:
            pair = out[charge_key(c, by)]
            pair[0] += c.cpu_cost
            pair[1] += c.memory_cost
    return {k: (v[0], v[1]) for k, v in out.items()}


def efficiency(data: HealthData, by: str) -> dict[str, Measure]:
    """Used / requested CPU and memory over the window, weighted by the subject's CPU and memory cost."""
    usage = data.usage
    if usage is None or not usage.containers:
        return {}
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(4))
    rows = np.stack([np.nansum(m, axis=1) for m in (usage.cpu_usage, usage.cpu_request, usage.memory_usage,
                                                     usage.memory_request)], axis=1)
    for slot, row in zip(usage.containers, rows):
        sums[subject_of_slot(slot, by, data.team_label)] += row
    costs = _cost_split(data.allocation, by)
    out = {}
    for subject, (cpu_used, cpu_req, mem_used, mem_req) in sums.items():
        parts = []                                                       # (ratio, weight, label)
        cpu_cost, mem_cost = costs.get(subject, (0.0, 0.0))
        weighted = cpu_cost + mem_cost > 0
        if cpu_req > 0:
            parts.append((cpu_used / cpu_req, cpu_cost if weighted else 1.0, "CPU"))
        if mem_req > 0:
            parts.append((mem_used / mem_req, mem_cost if weighted else 1.0, "memory"))
        total = sum(w for _, w, _ in parts)
        if not parts or total <= 0:
            continue
        value = float(sum(min(r, 1.0) * w for r, w, _ in parts) / total)
        how = f"weighted by cost ({usd(cpu_cost)} CPU, {usd(mem_cost)} memory)" if weighted else \
            "CPU and memory weighted equally (no cost allocation)"
        said = ", ".join(f"{label} {r:.0%} of requested used" for r, _, label in parts)
        out[subject] = Measure(value, bands.banded(value, bands.EFFICIENCY), f"{said}; {how}")
    return out


def waste(data: HealthData, by: str) -> dict[str, Measure]:
    """(Idle + orphaned volume cost) / (the subject's cost + those), over the allocation's window.

    Idle: the idle share added to the subject's containers (``idle: Share``), else each node's IDLE charge
    split by the subject's container cost on that node. Orphaned volumes: open orphan-volume opportunities
    of the subject (their monthly cost, prorated to the window).
    """
    allocation = data.allocation
    if allocation is None:
        return {}
    base: dict[str, float] = defaultdict(float)
    idle: dict[str, float] = defaultdict(float)
    on_node: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for c in allocation.charges:
        if c.kind in (ChargeKind.CONTAINER, ChargeKind.VOLUME):
            key = charge_key(c, by)
            own = c.cost - c.idle_cost - c.shared_cost
            base[key] += own
            idle[key] += c.idle_cost
            if c.kind is ChargeKind.CONTAINER and c.node:
                on_node[c.node][key] += own
    for c in allocation.charges:
        if c.kind is ChargeKind.IDLE and on_node.get(c.node):
            _split(c, on_node[c.node], idle)
    orphan = _orphans(data, by, (allocation.end - allocation.start).total_seconds() / 3600)
    out = {}
    for subject in set(base) | set(orphan):
        spent = base.get(subject, 0.0) + idle.get(subject, 0.0) + orphan.get(subject, 0.0)
        if spent <= 0:
            continue
        value = (idle.get(subject, 0.0) + orphan.get(subject, 0.0)) / spent
        out[subject] = Measure(value, bands.banded(value, bands.WASTE),
                               f"idle {usd(idle.get(subject, 0.0))} and orphaned volumes "
                               f"{usd(orphan.get(subject, 0.0))} of {usd(spent)} ({value:.0%})")
    return out


def _split(charge: Charge, shares: dict[str, float], into: dict[str, float]) -> None:
    total = sum(shares.values())
    if total > 0:
        for key, own in shares.items():
            into[key] += charge.cost * own / total


def _orphans(data: HealthData, by: str, hours: float) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for opp in data.opportunities or ():
        key = opp.team if by == "team" else opp.namespace
        if opp.type == ORPHAN and opp.state in OPEN and key:
            out[key] += max(0.0, opp.estimated_monthly_savings) * hours / HOURS_PER_MONTH
    return dict(out)


def budget(data: HealthData, by: str) -> dict[str, Measure]:
    """Budgets scoped to the subject: each scored min(its state's cap, its pace's band); amount-weighted."""
    scoped: dict[str, list[BudgetStanding]] = defaultdict(list)
    for b in data.budgets or ():
        if b.amount > 0:
            for subject in (b.teams if by == "team" else b.namespaces):
                scoped[subject].append(b)
    out = {}
    for subject, standings in scoped.items():
        total = sum(b.amount for b in standings)
        parts = []
        for b in standings:
            pace = (b.spend / b.amount) / max(b.elapsed, bands.MIN_ELAPSED)
            score = min(bands.STATE_CAP.get(b.state, 100.0), bands.banded(pace, bands.PACE))
            parts.append((pace, score, b))
        value = sum(p * b.amount for p, _, b in parts) / total
        score = round(sum(s * b.amount for _, s, b in parts) / total, 1)
        said = "; ".join(f"{b.name} {b.state}, {b.spend / b.amount:.0%} used at {b.elapsed:.0%} of the period"
                         for _, _, b in parts)
        out[subject] = Measure(value, score, said)
    return out


def savings(data: HealthData, by: str) -> dict[str, Measure]:
    """Realized / estimated savings of verified changes, and pull requests merged / opened (their mean)."""
    groups: dict[str, list] = defaultdict(list)
    for opp in data.opportunities or ():
        key = opp.team if by == "team" else opp.namespace
        if key:
            groups[key].append(opp)
    out = {}
    for subject, opps in groups.items():
        estimated = sum(o.estimated_monthly_savings for o in opps if o.state is S.VERIFIED)
        realized = sum(o.realized_monthly_savings or 0.0 for o in opps if o.state is S.VERIFIED)
        for cycle in (c for o in opps for c in o.past_cycles if c.get("realized_monthly_savings") is not None):
            estimated += float(cycle.get("estimated_monthly_savings") or 0.0)
            realized += float(cycle["realized_monthly_savings"])
        opened = sum(1 for o in opps if o.state in PROPOSED_EVER) + sum(len(o.past_cycles) for o in opps)
        merged = sum(1 for o in opps if o.state in DONE) + sum(len(o.past_cycles) for o in opps)
        parts, said = [], []
        if estimated > 0:
            parts.append(min(1.0, max(0.0, realized / estimated)))
            said.append(f"realized {usd(realized)} of {usd(estimated)}/month estimated")
        if opened:
            parts.append(merged / opened)
            said.append(f"{merged} of {opened} pull requests merged")
        if parts:
            value = sum(parts) / len(parts)
            out[subject] = Measure(value, bands.banded(value, bands.SAVINGS), "; ".join(said))
    return out


CATEGORIES = {"efficiency": efficiency, "waste": waste, "budget": budget, "savings": savings}
