"""One cost allocation of a window: usage hours + the nodes' prices + the bill -> Allocation (pure).

Where the inputs come from is the caller's business (the edges):

* usage: ``simulator.usage_hours`` (a simulation or snapshot) or ``sources.promalloc.read_usage_hours``;
* prices: the region's :class:`~.pricing.PriceBook` with the policy's ``spec.pricing`` (and live prices);
* the bill: the simulator's, the CUR (DuckDB or Athena), Cost Explorer, or none (price book only).

Usage::

    allocation = allocate_window(usage, state.nodes, book, bill, settings.allocation)
    allocation, rates = allocate_window_and_rates(usage, state.nodes, book, bill, settings.allocation)
    # rates: right-sizing priced with what is paid
"""
from __future__ import annotations

from datetime import UTC, datetime

from .allocation import AllocationSettings, allocate_and_rate
from .errors import ConfigError
from .models import Node
from .models.costs import Allocation, Bill, CostCategory, NodePrice, UsageHours
from .pricing import PriceBook, Rates
from .pricing.live import type_of


def node_prices(nodes: list[Node], book: PriceBook) -> tuple[dict[str, NodePrice], list[str]]:
    """Each node's hourly price and its source; nodes whose type the book lacks are left to the engine
    (it prices them from the other nodes and says so), with the book's error kept as a note."""
    prices: dict[str, NodePrice] = {}
    notes: list[str] = []
    for node in nodes:
        try:
            prices[node.name] = book.node_price(type_of(node, book), node.capacity_type, node.zone)
        except ConfigError as exc:
            notes.append(f"node {node.name}: {exc}")
    return prices, notes


def window_of(usage: UsageHours) -> tuple[datetime, datetime]:
    if len(usage.hours) == 0:
        raise ConfigError("no hours to allocate: the window holds no data", field="window")
    return (datetime.fromtimestamp(int(usage.hours[0]), UTC),
            datetime.fromtimestamp(int(usage.hours[-1]) + 3600, UTC))


def allocate_window(usage: UsageHours, nodes: list[Node], book: PriceBook, bill: Bill | None,
                    settings: AllocationSettings | None = None) -> Allocation:
    """Allocate the window ``usage`` covers; the bill is clipped to it (a longer bill is not "unallocated")."""
    return allocate_window_and_rates(usage, nodes, book, bill, settings)[0]


def allocate_window_and_rates(usage: UsageHours, nodes: list[Node], book: PriceBook, bill: Bill | None,
                              settings: AllocationSettings | None = None) -> tuple[Allocation, Rates]:
    """:func:`allocate_window`, and the per-core-hour and per-GiB-hour rates of the node costs actually paid
    (the bill when there is one), from one computation of those costs."""
    prices, notes = node_prices(nodes, book)
    start, end = window_of(usage)
    clipped = bill.clip(start, end) if bill is not None else None
    shared = None if clipped is not None else {CostCategory.CONTROL_PLANE: book.control_plane_hourly}
    allocation, rates = allocate_and_rate(usage, prices, book, bill=clipped, settings=settings, shared_hourly=shared)
    allocation.notes[:0] = notes + (clipped.problems if clipped is not None else [])
    return allocation, rates
