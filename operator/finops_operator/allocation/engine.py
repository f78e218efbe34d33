"""UsageHours + node prices (+ the bill) -> Allocation: every dollar of the window, allocated or reported.

    nodes       each node's actual cost per hour (nodecost), split into core-hour and GiB-hour rates
    containers  max(request, usage) x rate per hour; the rest of each node is its IDLE charge
    claims      the bill's cost of their volume, else its price (VOLUME charges)
    shared      control plane, load balancers, NAT: SHARED rows, or shared out by spec.allocation.shared
    the rest    bill lines that match nothing in the cluster, and parts of lines outside the window:
                UNALLOCATED rows with their service (never dropped)

``Allocation.residual`` (bill total - allocated) is 0 when every line found its
place; node-hours priced from the price book where the bill has none make it
negative by what the book says, and the notes say which.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import numpy as np

from ..models.costs import (Allocation, Bill, Charge, ChargeKind, CostCategory, NodePrice, PriceSource,
                            UsageHours)
from ..pricing.catalog import PriceBook
from .billspan import span_of, window_of
from .containers import ContainerCosts, container_costs
from ..pricing.allocation import Rates
from .nodecost import NodeCosts, node_costs
from .rates import rates_basis, rates_of
from .settings import AllocationSettings, IdlePolicy, SharedPolicy
from .shares import proportional, shared_out
from .volumes import VolumePrice, book_volume_price, claim_charges


def allocate(usage: UsageHours, prices: dict[str, NodePrice], book: PriceBook, *, bill: Bill | None = None,
             settings: AllocationSettings | None = None, volume_price: VolumePrice | None = None,
             shared_hourly: dict[CostCategory, float] | None = None) -> Allocation:
    """Allocate the window of ``usage``.

    ``prices``: each node's hourly price by node name (a node without one is priced from ``book``, noted);
    ``book``: the CPU:memory ratio of the split, and volume prices unless ``volume_price`` is given;
    ``shared_hourly``: cluster-wide costs per hour when there is no bill (e.g. the control plane fee).
    """
    return _allocate(usage, node_costs(usage, prices, book, bill), book, bill=bill, settings=settings,
                     volume_price=volume_price, shared_hourly=shared_hourly)


def allocate_and_rate(usage: UsageHours, prices: dict[str, NodePrice], book: PriceBook, *, bill: Bill | None = None,
                      settings: AllocationSettings | None = None,
                      shared_hourly: dict[CostCategory, float] | None = None) -> tuple[Allocation, Rates]:
    """:func:`allocate` and :func:`.rates.effective_rates` from one computation of the node costs (a policy run
    wants both: the allocation and the rates its right-sizing is priced with)."""
    nodes = node_costs(usage, prices, book, bill)
    allocation = _allocate(usage, nodes, book, bill=bill, settings=settings, shared_hourly=shared_hourly)
    return allocation, rates_of(nodes, [n.name for n in usage.nodes], book, basis=rates_basis(bill))


def _allocate(usage: UsageHours, nodes: NodeCosts, book: PriceBook, *, bill: Bill | None,
              settings: AllocationSettings | None, volume_price: VolumePrice | None = None,
              shared_hourly: dict[CostCategory, float] | None = None) -> Allocation:
    settings = settings or AllocationSettings()
    start, end = (datetime.fromtimestamp(t, UTC) for t in window_of(usage.hours))
    rows = container_costs(usage, nodes)
    notes = [*nodes.notes, *rows.notes]
    volumes, volume_lines = claim_charges(usage, bill, volume_price or book_volume_price(book), notes)
    shared, leftover = _bill_rest(bill, usage, nodes.used_lines | volume_lines, notes)
    if bill is None and shared_hourly:
        shared = {(cat, "", ""): hourly * len(usage.hours) for cat, hourly in shared_hourly.items() if hourly}
    idle_share = _share_idle(settings, rows, notes)
    source = PriceSource.EFFECTIVE if bill is not None else PriceSource.LIST
    shared_rows, shared_share = _share_shared(settings, shared, rows, idle_share, usage, source, notes)
    charges = [*_container_charges(usage, nodes, rows, idle_share, shared_share, settings),
               *([] if idle_share is not None else _idle_charges(usage, nodes, rows)),
               *volumes, *shared_rows, *leftover]
    return Allocation(start, end, charges, bill.total() if bill is not None else None,
                      price_sources=nodes.sources, notes=notes)


def _bill_rest(bill: Bill | None, usage: UsageHours, used: set[int], notes: list[str]):
    """Cluster-wide costs by (category, service, resource), and UNALLOCATED charges for the rest."""
    shared: dict[tuple[CostCategory, str, str], float] = defaultdict(float)
    rest: dict[tuple[CostCategory, str, str], float] = defaultdict(float)
    outside = 0.0
    if bill is None:
        return {}, []
    for k, line in enumerate(bill.lines):
        span = span_of(line, usage.hours)
        inside = 0.0 if span.empty else span.inside
        if inside < 1.0:
            rest[(line.category, line.service, "outside the window")] += line.cost * (1.0 - inside)
            outside += line.cost * (1.0 - inside)
        if k in used or inside == 0.0:
            continue
        key = (line.category, line.service, line.resource_id)
        (shared if line.category.shared else rest)[key] += line.cost * inside
    if outside:
        notes.append(f"${outside:.2f} of the bill falls outside the usage window; reported as unallocated")
    if rest:
        notes.append(f"${sum(rest.values()):.2f} of the bill matches no node, volume or cluster-wide cost; "
                     "reported as unallocated by service")
    leftover = [Charge(ChargeKind.UNALLOCATED, cost, category=cat, service=service, resource=resource,
                       price_source=PriceSource.EFFECTIVE)
                for (cat, service, resource), cost in sorted(rest.items(), key=_order)]
    return dict(shared), leftover


def _order(item: tuple[tuple[CostCategory, str, str], float]) -> tuple[str, str, str]:
    (category, service, resource), _ = item
    return category.value, service, resource


def _share_idle(settings: AllocationSettings, rows: ContainerCosts, notes: list[str]) -> np.ndarray | None:
    """Each row's part of the cluster's idle (None: idle stays its own rows)."""
    if settings.idle is not IdlePolicy.SHARE:
        return None
    share = proportional(float(rows.idle.sum()), np.where(rows.ran, rows.cost, 0.0))
    if share is None:
        notes.append("idle is not shared: no container was charged anything to share it by")
    return share


def _share_shared(settings: AllocationSettings, shared: dict[tuple[CostCategory, str, str], float],
                  rows: ContainerCosts, idle_share: np.ndarray | None, usage: UsageHours, source: PriceSource,
                  notes: list[str]):
    """SHARED charges (Report, or nobody to share with), else each row's part of the cluster-wide costs."""
    amount = sum(shared.values())
    cost = rows.cost + (idle_share if idle_share is not None else 0.0)
    namespaces = np.array([c.namespace for c in usage.containers], dtype=object)
    share = shared_out(settings.shared, amount, cpu=rows.cpu, cost=cost, namespaces=namespaces, ran=rows.ran) \
        if shared else None
    if share is not None:
        return [], share
    if shared and settings.shared is not SharedPolicy.REPORT:
        notes.append("cluster-wide costs are not shared out: no container was charged anything to share them by")
    return [Charge(ChargeKind.SHARED, cost, category=cat, service=service, resource=resource, price_source=source)
            for (cat, service, resource), cost in sorted(shared.items(), key=_order)], None


def _container_charges(usage: UsageHours, nodes: NodeCosts, rows: ContainerCosts, idle_share: np.ndarray | None,
                       shared_share: np.ndarray | None, settings: AllocationSettings) -> list[Charge]:
    names = [n.name for n in usage.nodes]
    idle = idle_share if idle_share is not None else np.zeros(len(usage.containers))
    shared = shared_share if shared_share is not None else np.zeros(len(usage.containers))
    total = rows.cost + idle + shared
    out = []
    for r in np.nonzero(rows.ran)[0]:
        slot, n = usage.containers[r], int(usage.node_of[r])
        workload = f"{slot.workload.kind}/{slot.workload.name}" if slot.workload else ""
        out.append(Charge(ChargeKind.CONTAINER, float(total[r]), namespace=slot.namespace, workload=workload,
                          container=slot.container, node=names[n] if n >= 0 else "",
                          team=slot.team_of(settings.team_label),
                          labels=slot.labels, cpu_cost=float(rows.cpu[r]), memory_cost=float(rows.memory[r]),
                          shared_cost=float(shared[r]), idle_cost=float(idle[r]),
                          price_source=nodes.source[n] if n >= 0 else PriceSource.LIST))
    return out


def _idle_charges(usage: UsageHours, nodes: NodeCosts, rows: ContainerCosts) -> list[Charge]:
    return [Charge(ChargeKind.IDLE, float(rows.idle[i]), node=node.name, cpu_cost=float(rows.idle_cpu[i]),
                   memory_cost=float(rows.idle_memory[i]), price_source=nodes.source[i],
                   resource=node.instance_id or "")
            for i, node in enumerate(usage.nodes) if rows.idle[i] != 0.0]
