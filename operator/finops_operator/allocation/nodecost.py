"""Each node's actual cost per hour: the bill where it has the node, its price otherwise.

    bill lines of the node's instance id   hourly lines land in their hour; longer (daily) lines are
                                           spread over the hours the node was present in them
    aggregate node lines (Cost Explorer:   the priced cost of the nodes the bill does not name, in the
      no resource id)                      line's span, is scaled to the line's cost
    otherwise                              NodePrice.hourly x each hour the node was present

The cost is then split into a per-core-hour and a per-GiB-hour rate with the
price book's ratio (:func:`..pricing.allocation.split_price`): ``cores x cpu_rate
+ GiB x memory_rate == cost`` for every node-hour.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..models.costs import Bill, CostCategory, NodePrice, NodeSlot, PriceSource, UsageHours
from ..pricing.allocation import split_price
from ..pricing.catalog import PriceBook
from ..units import GI
from .billspan import span_of


@dataclass(slots=True)
class NodeCosts:
    """Node-hour costs (USD) and the split of each node's cost into CPU and memory."""

    cost: np.ndarray                      # [N, H] USD per node-hour
    cores: np.ndarray                     # [N] allocatable cores used for the split
    gib: np.ndarray                       # [N] allocatable GiB used for the split
    cpu_unit: np.ndarray                  # [N] USD per core-hour for each USD of node-hour cost
    mem_unit: np.ndarray                  # [N] USD per GiB-hour for each USD of node-hour cost
    source: list[PriceSource]             # [N] where most of each node's cost came from
    sources: dict[PriceSource, float] = field(default_factory=dict)
    used_lines: set[int] = field(default_factory=set)   # bill line indices put on nodes
    notes: list[str] = field(default_factory=list)

    @property
    def cpu_rate(self) -> np.ndarray:
        """[N, H] USD per core-hour."""
        return self.cost * self.cpu_unit[:, None]

    @property
    def mem_rate(self) -> np.ndarray:
        """[N, H] USD per GiB-hour."""
        return self.cost * self.mem_unit[:, None]


def node_costs(usage: UsageHours, prices: dict[str, NodePrice], book: PriceBook,
               bill: Bill | None = None) -> NodeCosts:
    nodes, present = usage.nodes, usage.node_present.astype(bool)
    n, h = present.shape
    cost = np.zeros((n, h))
    covered = np.zeros((n, h), dtype=bool)
    by_source: dict[tuple[int, PriceSource], float] = defaultdict(float)
    used: set[int] = set()
    notes: list[str] = []
    if bill is not None:
        _bill_lines(bill, usage, cost, covered, by_source, used, notes)
    hourly, hourly_source = _hourly_prices(nodes, prices, book, notes)
    priced = present & ~covered
    cost += np.where(priced, hourly[:, None], 0.0)
    for i in range(n):
        by_source[(i, hourly_source[i])] += float(hourly[i] * priced[i].sum())
    if bill is not None:
        _scale_to_aggregate_lines(bill, usage, cost, priced, hourly_source, by_source, used, notes)
        _note_unbilled(nodes, priced, cost, notes)
    cores, gib, cpu_unit, mem_unit = _split_units(nodes, book, notes)
    source = [max((s for s in PriceSource), key=lambda s, i=i: (by_source.get((i, s), 0.0), s is PriceSource.LIST))
              for i in range(n)]
    sources: dict[PriceSource, float] = defaultdict(float)
    for (_, src), value in by_source.items():
        if value:
            sources[src] += float(value)
    return NodeCosts(cost, cores, gib, cpu_unit, mem_unit, source, dict(sources), used, notes)


def _bill_lines(bill: Bill, usage: UsageHours, cost: np.ndarray, covered: np.ndarray,
                by_source: dict, used: set[int], notes: list[str]) -> None:
    """Put every bill line of a node's instance id on that node's hours (hourly lines at once)."""
    index = {node.instance_id: i for i, node in enumerate(usage.nodes) if node.instance_id}
    rows, firsts, amounts, longer = [], [], [], []
    for k, line in enumerate(bill.lines):
        i = index.get(line.resource_id) if line.resource_id else None
        if i is None:
            continue
        span = span_of(line, usage.hours)
        if span.empty:
            continue                                   # wholly outside the window: reported by the engine
        used.add(k)
        amount = line.cost * span.inside
        by_source[(i, line.pricing)] += amount
        if span.stop - span.first == 1:
            rows.append(i), firsts.append(span.first), amounts.append(amount)
        else:
            longer.append((i, span.first, span.stop, amount))
    if rows:
        np.add.at(cost, (np.asarray(rows), np.asarray(firsts)), np.asarray(amounts))
        covered[np.asarray(rows), np.asarray(firsts)] = True
    for i, first, stop, amount in longer:
        weights = usage.node_present[i, first:stop].astype(float)
        if weights.sum() == 0:
            weights[:] = 1.0                           # billed while the usage data has it absent
        cost[i, first:stop] += amount * weights / weights.sum()
        covered[i, first:stop] |= weights > 0
    absent_hours = int((covered & ~usage.node_present.astype(bool)).sum())
    if absent_hours:
        notes.append(f"{absent_hours} node-hours are billed while the usage data shows the node absent; "
                     "their cost is the node's idle cost")


def _note_unbilled(nodes: list[NodeSlot], priced: np.ndarray, cost: np.ndarray, notes: list[str]) -> None:
    """Node-hours the bill has nothing for were priced: they make the residual negative by their cost."""
    hours = priced.sum(axis=1)
    missing = [f"{nodes[i].name} ({int(hours[i])} h)" for i in np.nonzero(hours)[0]]
    if missing:
        amount = float(np.where(priced, cost, 0.0).sum())
        notes.append(f"the bill has no cost for {len(missing)} nodes in some hours: {', '.join(missing[:5])}"
                     f"{' ...' if len(missing) > 5 else ''}; priced at their node price (${amount:.2f}), "
                     "which the bill does not hold (the residual shows it)")


def _hourly_prices(nodes: list[NodeSlot], prices: dict[str, NodePrice], book: PriceBook,
                   notes: list[str]) -> tuple[np.ndarray, list[PriceSource]]:
    """Each node's NodePrice; a node without one gets the book's list price, stated in the notes."""
    hourly = np.zeros(len(nodes))
    sources = [PriceSource.LIST] * len(nodes)
    unpriced = []
    for i, node in enumerate(nodes):
        price = prices.get(node.name)
        if price is not None:
            hourly[i], sources[i] = price.hourly, price.source
            continue
        try:
            hourly[i] = book.node_hourly(node.instance_type, node.capacity_type)
            notes.append(f"node {node.name} had no price given; priced from the {book.region} price book "
                         f"({node.instance_type}, {node.capacity_type})")
        except ConfigError:
            unpriced.append(node)
    if unpriced:
        _price_by_capacity(nodes, hourly, unpriced, book, notes)
    return hourly, sources


def _price_by_capacity(nodes: list[NodeSlot], hourly: np.ndarray, unpriced: list[NodeSlot],
                       book: PriceBook, notes: list[str]) -> None:
    """Nodes no price covers: the other nodes' average price per (reference-weighted) capacity."""
    weight = {n.name: n.cpu_cores * book.cpu_reference + n.memory_bytes / GI * book.memory_reference
              for n in nodes}
    missing = {id(node) for node in unpriced}
    known = [i for i, n in enumerate(nodes) if id(n) not in missing and weight[n.name] > 0]
    if known:
        per_weight = hourly[known].sum() / sum(weight[nodes[i].name] for i in known)
        basis = "the other nodes' average price per unit of capacity"
    else:
        per_weight, basis = 1.0, "the price book's reference CPU and memory rates"
    for i, node in enumerate(nodes):
        if id(node) not in missing:
            continue
        hourly[i] = weight[node.name] * per_weight
        notes.append(f"node {node.name}: instance type {node.instance_type!r} has no price; priced at {basis} "
                     f"(${hourly[i]:.4f}/h); add it to the price book or give its price to fix this")


def _scale_to_aggregate_lines(bill: Bill, usage: UsageHours, cost: np.ndarray, priced: np.ndarray,
                              sources: list[PriceSource], by_source: dict, used: set[int],
                              notes: list[str]) -> None:
    """Cost Explorer-style node lines (no resource id): scale the priced node-hours they cover to their cost."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k, line in enumerate(bill.lines):
        if line.category is CostCategory.NODE and not line.resource_id:
            span = span_of(line, usage.hours)
            if not span.empty:
                groups[(span.first, span.stop)].append(k)
    for (first, stop), lines in sorted(groups.items()):
        amount = sum(bill.lines[k].cost * span_of(bill.lines[k], usage.hours).inside for k in lines)
        block = np.where(priced[:, first:stop], cost[:, first:stop], 0.0)
        total = block.sum()
        if total <= 0:
            continue                                   # no node to put it on: stays unallocated
        used.update(lines)
        factor = amount / total
        cost[:, first:stop] += block * (factor - 1.0)
        for i in np.nonzero(block.sum(axis=1))[0]:
            share = float(block[i].sum())
            by_source[(int(i), sources[int(i)])] -= share
            by_source[(int(i), PriceSource.EFFECTIVE)] += share * factor
    if groups:
        notes.append("the bill names no node instances for some hours: the priced node cost of those hours "
                     "was scaled to the bill's node total (Cost Explorer)")


def _split_units(nodes: list[NodeSlot], book: PriceBook, notes: list[str]):
    """Per node: allocatable cores and GiB, and the split of one USD of node-hour into core and GiB rates."""
    n = len(nodes)
    cores, gib, cpu_unit, mem_unit = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for i, node in enumerate(nodes):
        c, g = node.cpu_cores, node.memory_bytes / GI
        if c <= 0 or g <= 0:
            spec = book.instances.get(node.instance_type)
            if spec is None:
                notes.append(f"node {node.name} reports no allocatable CPU/memory and its type "
                             f"{node.instance_type!r} is unknown: its whole cost is idle")
                continue
            c, g = spec.vcpu, spec.memory_gib
        cores[i], gib[i] = c, g
        cpu_unit[i], mem_unit[i] = split_price(1.0, c, g, book)
    return cores, gib, cpu_unit, mem_unit
