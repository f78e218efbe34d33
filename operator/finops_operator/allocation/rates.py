"""Right-sizing rates from the node costs allocation actually used (the bill where it has the nodes).

The blend is the one :func:`..pricing.allocation.cluster_rates` makes from list
prices, weighted by capacity and now also by hours present: the CPU part of every
node-hour's cost over all core-hours, the memory part over all GiB-hours. With no
bill these are the node prices' rates; with one they are what the cluster really
pays per core and per GiB, Savings Plans and spot included.
"""
from __future__ import annotations

from ..models.costs import Bill, NodePrice, UsageHours
from ..pricing.allocation import Rates, default_rates
from ..pricing.catalog import PriceBook
from .nodecost import NodeCosts, node_costs


def rates_of(nodes: NodeCosts, names: list[str], book: PriceBook, *, basis: str) -> Rates:
    """Blended per-core-hour and per-GiB-hour rates of ``nodes`` (the book's default when nothing was billed)."""
    billed = nodes.cost > 0
    core_hours = float((nodes.cores[:, None] * billed).sum())
    gib_hours = float((nodes.gib[:, None] * billed).sum())
    if core_hours <= 0 or gib_hours <= 0:
        return default_rates(book)
    cpu_cost = float((nodes.cpu_rate * nodes.cores[:, None]).sum())
    mem_cost = float((nodes.mem_rate * nodes.gib[:, None]).sum())
    priced = [name for name, row in zip(names, billed) if row.any()]
    unpriced = [name for name, row in zip(names, billed) if not row.any()]
    return Rates(cpu_cost / core_hours, mem_cost / gib_hours, len(priced), unpriced, basis)


def effective_rates(usage: UsageHours, prices: dict[str, NodePrice], book: PriceBook,
                    bill: Bill | None = None) -> Rates:
    """Rates for right-sizing savings: ``basis`` is "bill" when a bill corrected the node costs, else "prices"."""
    nodes = node_costs(usage, prices, book, bill)
    return rates_of(nodes, [n.name for n in usage.nodes], book, basis=rates_basis(bill))


def rates_basis(bill: Bill | None) -> str:
    """"bill" when a bill corrected the node costs, else "prices"."""
    return "bill" if bill is not None else "prices"
