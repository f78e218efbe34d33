"""Storage charged to its claim: the bill's cost of the claim's volume, else its price.

A claim whose volume id is in the bill is charged what the bill says for it
inside the window (EFFECTIVE); otherwise ``volume_price(claim)`` (USD per hour,
default: the price book's monthly price of its type and size / hours per month)
times the hours the claim existed (LIST). A claim whose type has no price is
charged nothing and named in the notes.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

from ..errors import ConfigError
from ..models.costs import Bill, Charge, ChargeKind, ClaimSlot, CostCategory, PriceSource, UsageHours
from ..pricing.catalog import PriceBook
from .billspan import span_of

VolumePrice = Callable[[ClaimSlot], float]      # USD per hour


def book_volume_price(book: PriceBook) -> VolumePrice:
    """The price book's hourly price of a claim's volume (storage; IOPS/throughput are not known here)."""
    return lambda claim: book.volume_monthly(claim.volume_type, claim.size_gib) / book.hours_per_month


def claim_charges(usage: UsageHours, bill: Bill | None, price: VolumePrice,
                  notes: list[str]) -> tuple[list[Charge], set[int]]:
    """One VOLUME charge per claim, and the indices of the bill lines they used."""
    billed: dict[str, float] = defaultdict(float)
    service: dict[str, str] = {}
    used: set[int] = set()
    wanted = {c.volume_id for c in usage.claims if c.volume_id}
    if bill is not None:
        for k, line in enumerate(bill.lines):
            if line.resource_id in wanted:
                span = span_of(line, usage.hours)
                if not span.empty:
                    billed[line.resource_id] += line.cost * span.inside
                    service.setdefault(line.resource_id, line.service)
                    used.add(k)
    charges, unpriced, unbilled = [], [], 0.0
    hours = len(usage.hours)
    for c, claim in enumerate(usage.claims):
        if claim.volume_id and claim.volume_id in billed:
            cost, source = billed[claim.volume_id], PriceSource.EFFECTIVE
        else:
            present = hours if usage.claim_present is None else int(usage.claim_present[c].sum())
            try:
                cost, source = price(claim) * present, PriceSource.LIST
                unbilled += cost if bill is not None else 0.0
            except ConfigError:
                unpriced.append(f"{claim.namespace}/{claim.name} ({claim.volume_type})")
                continue
        charges.append(Charge(ChargeKind.VOLUME, cost, namespace=claim.namespace,
                              workload=f"PersistentVolumeClaim/{claim.name}",
                              category=CostCategory.VOLUME, price_source=source,
                              service=service.get(claim.volume_id or "", ""), resource=claim.volume_id or ""))
    if unbilled:
        notes.append(f"claims whose volume the bill does not name were priced from the price book (${unbilled:.2f}), "
                     "which the bill does not hold (the residual shows it)")
    if unpriced:
        notes.append(f"{len(unpriced)} claims have a volume type without a price and are not charged: "
                     f"{', '.join(unpriced[:5])}; add the type to the price book's 'ebs' section")
    return charges, used
