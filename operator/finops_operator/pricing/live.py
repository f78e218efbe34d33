"""Pricing: a price book plus the user's overrides and optional live/spot lookups, per node.

    pricing = Pricing(book, live=AwsPrices(region))      # live: sources/awsprices.py (or None)
    pricing.node_price(node)          # NodePrice: user > observed spot > live > book, with where it came from
    book = pricing.book_for(state.nodes)   # the book detectors use, live and spot prices of these nodes baked in

Precedence for one node: a user price (``spec.pricing.instancePrices`` or a custom
table) wins; a spot node takes the observed spot price of its type in its zone
(``ec2:DescribeSpotPriceHistory``), else on-demand x (1 - spot discount); the
on-demand price is the live Price List answer when live prices are on, else the
book's. A live lookup that fails is a stated fallback, never a silent zero: the
book's price is used and the reason lands in ``book.notes`` and the price detail.
Pure: the lookups are a :class:`LivePrices` (I/O lives in ``sources/awsprices.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

from ..errors import FinOpsError
from ..models import Node
from ..models.costs import NodePrice, PriceSource
from .catalog import PriceBook
from .tables import InstancePrice


@dataclass(frozen=True, slots=True)
class LiveQuote:
    """An on-demand price from the Price List API, with the size it lists."""

    instance_type: str
    hourly: float
    vcpu: float
    memory_gib: float
    detail: str                      # e.g. "pricing:GetProducts us-east-1, effective 2024-05-01"
    arch: str = "x86_64"


@dataclass(frozen=True, slots=True)
class SpotQuotes:
    """Observed spot prices per (instance type, zone) and how they were read."""

    prices: dict[tuple[str, str], float]
    detail: str                      # e.g. "ec2:DescribeSpotPriceHistory, latest as of 2024-06-01T10:00Z"


class LivePrices(Protocol):
    """What live pricing needs from AWS (implemented by ``sources.awsprices.AwsPrices``)."""

    region: str

    def on_demand(self, instance_types: Iterable[str]) -> dict[str, LiveQuote]: ...

    def spot(self, instance_types: Iterable[str], zones: Iterable[str]) -> SpotQuotes: ...


def type_of(node: Node, book: PriceBook) -> str:
    """The node's type as the book names it: a custom table's label value, else the instance type."""
    if book.node_label:
        return node.labels.get(book.node_label) or node.instance_type
    return node.instance_type


@dataclass
class Pricing:
    """A book, the user's prices already applied to it, and optional live lookups."""

    book: PriceBook
    live: LivePrices | None = None
    problems: list[str] = field(default_factory=list)

    def book_for(self, nodes: Iterable[Node]) -> PriceBook:
        """The book with the live on-demand and spot prices of these nodes' types (the book itself without live)."""
        nodes = list(nodes)
        if self.live is None or not nodes:
            return self.book
        book = self.book.copy()
        types = sorted({type_of(n, book) for n in nodes} - {t for t, p in book.instances.items()
                                                            if p.source is PriceSource.USER})
        self._add_on_demand(book, types)
        spot_types = sorted({type_of(n, book) for n in nodes if n.capacity_type.lower() == "spot"})
        zones = sorted({n.zone for n in nodes if n.capacity_type.lower() == "spot" and n.zone})
        if spot_types and zones:
            self._add_spot(book, spot_types, zones)
        return book

    def node_price(self, node: Node) -> NodePrice:
        """The hourly price of one node and where it came from."""
        book = self.book_for([node])
        return book.node_price(type_of(node, book), node.capacity_type, node.zone)

    def _add_on_demand(self, book: PriceBook, types: list[str]) -> None:
        if not types:
            return
        try:
            quotes = self.live.on_demand(types)      # type: ignore[union-attr]
        except FinOpsError as exc:
            self._fallback(book, f"live on-demand prices unavailable ({exc}); the {book.label} is used")
            return
        for name, quote in quotes.items():
            known = book.instances.get(name)
            vcpu = quote.vcpu or (known.vcpu if known else 0.0)
            memory = quote.memory_gib or (known.memory_gib if known else 0.0)
            if vcpu <= 0 or memory <= 0:
                self._fallback(book, f"the Price List answer for {name} lists no vCPU/memory and the book does not "
                                     "know the type; add it with a custom table (spec.pricing.configMapRef)")
                continue
            book.instances[name] = InstancePrice(name, vcpu, memory, quote.hourly, quote.arch, PriceSource.LIVE,
                                                 f"{name} on-demand {quote.hourly:g} USD/h, {quote.detail}")
        missing = [t for t in types if t not in quotes]
        if missing:
            self._fallback(book, f"the Price List API has no on-demand price for {', '.join(missing)} in "
                                 f"{book.region}; the {book.label} is used for them")

    def _add_spot(self, book: PriceBook, types: list[str], zones: list[str]) -> None:
        try:
            quotes = self.live.spot(types, zones)    # type: ignore[union-attr]
        except FinOpsError as exc:
            self._fallback(book, f"spot prices unavailable ({exc}); spot nodes are priced at on-demand x "
                                 f"(1 - {book.spot_discount:g})")
            return
        book.spot_observed.update(quotes.prices)
        book.spot_detail = quotes.detail

    def _fallback(self, book: PriceBook, message: str) -> None:
        book.notes.append(message)
        self.problems.append(message)


def book_for_state(prices: "PriceBook | Pricing | None", region: str, nodes: Iterable[Node]) -> PriceBook:
    """The book one run prices with: the wired one (with live prices for ``nodes``), else the region's."""
    if prices is None:
        return PriceBook.for_region(region)
    if isinstance(prices, Pricing):
        return prices.book_for(nodes)
    return prices
