"""Daily cost of a budget's cluster scope from allocated cost (pure).

    costs = daily_costs(usage, days, zone, allocate=lambda u: allocate_window(u, [], book, None, settings),
                        scope=ClusterScope(namespaces=frozenset({"shop"})))
    costs[date(2026, 3, 1)]           # USD, or NaN when no node ran that day

``usage`` covers the days (one read, batched); each local day (23-25 hours across DST) is cut out of it
and allocated on its own (:func:`..costrun.allocate_window`, injected), so a day's cost is that day's
prices and placements. The scope keeps the charges of containers and claims in its namespaces, with its
labels, of its teams (every field given must match); idle and cluster-wide costs count only as far as the
policy shares them out onto containers (``spec.allocation``). An empty scope is the whole cluster: every
charge, idle and shared included, so the budget covers the bill's cluster part.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, tzinfo

import numpy as np

from ..models.costs import Allocation, Charge, ChargeKind, UsageHours
from .periods import day_bounds

_PER_WORKLOAD = (ChargeKind.CONTAINER, ChargeKind.VOLUME)


@dataclass(frozen=True, slots=True)
class ClusterScope:
    namespaces: frozenset[str] = frozenset()
    labels: tuple[tuple[str, str], ...] = ()
    teams: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        return not (self.namespaces or self.labels or self.teams)

    def covers(self, charge: Charge) -> bool:
        if self.everything:
            return True
        if charge.kind not in _PER_WORKLOAD:
            return False
        return ((not self.namespaces or charge.namespace in self.namespaces)
                and all(charge.labels.get(k) == v for k, v in self.labels)
                and (not self.teams or (charge.team or "unassigned") in self.teams))


def scoped_cost(allocation: Allocation, scope: ClusterScope) -> float:
    return float(sum(c.cost for c in allocation.charges if scope.covers(c)))


def slice_hours(usage: UsageHours, lo: int, hi: int) -> UsageHours:
    """The hours ``[lo, hi)`` (indices) of ``usage``: every container, node and claim, fewer columns."""
    return replace(usage, hours=usage.hours[lo:hi], node_present=usage.node_present[:, lo:hi],
                   cpu_request=usage.cpu_request[:, lo:hi], cpu_usage=usage.cpu_usage[:, lo:hi],
                   memory_request=usage.memory_request[:, lo:hi], memory_usage=usage.memory_usage[:, lo:hi],
                   claim_present=None if usage.claim_present is None else usage.claim_present[:, lo:hi])


def daily_costs(usage: UsageHours, days: Iterable[date], zone: tzinfo, *,
                allocate: Callable[[UsageHours], Allocation], scope: ClusterScope) -> dict[date, float]:
    """Each day's scoped cost; NaN for a day ``usage`` does not cover or in which no node was present."""
    out: dict[date, float] = {}
    for day in days:
        start, end = day_bounds(day, zone)
        lo, hi = np.searchsorted(usage.hours, [start.timestamp(), end.timestamp()])
        if hi <= lo or not usage.node_present[:, lo:hi].any():
            out[day] = float("nan")
            continue
        out[day] = scoped_cost(allocate(slice_hours(usage, int(lo), int(hi))), scope)
    return out
