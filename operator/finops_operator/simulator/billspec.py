"""The scenario's optional ``billing`` block: how the simulated bill prices the cluster.

Documented with the rest of the scenario in :mod:`.scenario`; read by :func:`parse_billing`,
used by :mod:`.billing`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .reading import Reader


@dataclass(frozen=True, slots=True)
class SavingsPlan:
    """A Compute Savings Plan: the share of each hour's on-demand EC2 cost it covers, and its discount."""

    coverage: float = 0.0
    discount: float = 0.28


@dataclass(slots=True)
class BillingSpec:
    """How the simulated bill prices the cluster (the ``billing`` block in :mod:`.scenario`)."""

    account_id: str = "123456789012"
    savings_plan: SavingsPlan = field(default_factory=SavingsPlan)
    spot_discount: float | None = None
    load_balancers: int = 1
    nat_gateways: int = 1
    data_transfer_gb_per_day: float = 20.0


def parse_billing(data: Any, source: str) -> BillingSpec:
    """Validate the ``billing`` mapping (absent: the defaults); errors name ``billing.<key>``."""
    if data is None:
        return BillingSpec()
    obj = Reader(data, "billing", source, {"accountId", "savingsPlanCoverage", "savingsPlanDiscount",
                                           "spotDiscount", "loadBalancers", "natGateways", "dataTransferGbPerDay"})
    default = BillingSpec()
    spec = BillingSpec(str(obj.get("accountId", (str, int), default.account_id)),
                       SavingsPlan(_share(obj, "savingsPlanCoverage", default.savings_plan.coverage, 1.0),
                                   _share(obj, "savingsPlanDiscount", default.savings_plan.discount, 0.99)),
                       _share(obj, "spotDiscount", None, 0.99),
                       obj.get("loadBalancers", int, default.load_balancers, low=0),
                       obj.get("natGateways", int, default.nat_gateways, low=0),
                       obj.get("dataTransferGbPerDay", float, default.data_transfer_gb_per_day, low=0.0))
    if not (len(spec.account_id) == 12 and spec.account_id.isdigit()):
        obj.fail(f"an AWS account id is 12 digits, got {spec.account_id!r}; quote it to keep leading zeros",
                 "accountId")
    return spec


def _share(obj: Reader, key: str, default: float | None, high: float) -> float | None:
    value = obj.get(key, float, default, low=0.0)
    if value is not None and value > high:
        obj.fail(f"must be between 0 and {high}, got {value}", key)
    return value
