"""Reading price tables: the bundled regional books and user tables, validated field by field.

Pure: text or parsed data in, typed entries out; every error is a ConfigError that
names the table, the field and what to write instead. Money is USD: a table that
says another ``currency`` is refused (``models.costs.CURRENCY``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..errors import ConfigError
from ..models.costs import CURRENCY, PriceSource

BOOK_PREFIX, BOOK_SUFFIX = "prices-aws-", ".json"


@dataclass(frozen=True, slots=True)
class InstancePrice:
    """One node type: price per hour, its size, and where the price came from."""

    instance_type: str
    vcpu: float
    memory_gib: float
    hourly: float
    arch: str = "x86_64"
    source: PriceSource = PriceSource.LIST
    detail: str = ""           # set for prices that are not the book's own (user, live)


@dataclass(frozen=True, slots=True)
class VolumePrice:
    """One EBS volume type. IOPS/throughput above the included amounts are charged."""

    volume_type: str
    gb_month: float
    iops_month: float = 0.0
    included_iops: int = 0
    iops_tiers: tuple[tuple[int | None, float], ...] = ()   # (up to, price), for io2
    throughput_mibps_month: float = 0.0
    included_throughput_mibps: int = 0


def bundled_regions() -> list[str]:
    """Regions with a bundled price book (``finops_operator/data/prices-aws-<region>.json``)."""
    data = resources.files("finops_operator").joinpath("data")
    return sorted(p.name[len(BOOK_PREFIX):-len(BOOK_SUFFIX)] for p in data.iterdir()
                  if p.name.startswith(BOOK_PREFIX) and p.name.endswith(BOOK_SUFFIX))


def bundled_text(region: str) -> str | None:
    """The bundled book of ``region`` as text, None when there is none."""
    if region not in bundled_regions():
        return None
    return resources.files("finops_operator").joinpath("data", f"{BOOK_PREFIX}{region}{BOOK_SUFFIX}").read_text()


def parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
                          source=source) from None


def check_currency(data: dict[str, Any], source: str) -> None:
    """Refuse a table priced in anything but USD (a currency-free table is read as USD)."""
    currency = data.get("currency", CURRENCY)
    if not isinstance(currency, str) or currency.strip().upper() != CURRENCY:
        raise ConfigError(f"prices in currency {currency!r} are refused: finops-operator computes in {CURRENCY} "
                          f"(bills, savings and allocation are {CURRENCY}); convert the table to {CURRENCY} or "
                          "remove 'currency'", source=source, field="currency")


def section(data: dict[str, Any], name: str, source: str, *, shape: str) -> dict[str, Any]:
    found = data.get(name)
    if not isinstance(found, dict) or not found:
        raise ConfigError(f"missing or empty '{name}' object; {shape}", source=source, field=name)
    return found


def number(value: Any, source: str, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"expected a number, got {value!r}", source=source, field=where)
    if value != value or value < 0 or (positive and value == 0) or value == float("inf"):
        raise ConfigError(f"expected a {'positive' if positive else 'non-negative'} number, got {value!r}",
                          source=source, field=where)
    return float(value)


def fraction(value: Any, source: str, where: str) -> float:
    result = number(value, source, where)
    if result >= 1:
        raise ConfigError(f"expected a fraction between 0 and 1 (0.6 = 60% off), got {value!r}",
                          source=source, field=where)
    return result


def instance(name: str, spec: Any, source: str, *, where_prefix: str = "instances",
             price_source: PriceSource = PriceSource.LIST, detail: str = "") -> InstancePrice:
    where = f"{where_prefix}.{name}"
    if not isinstance(spec, dict):
        raise ConfigError("expected an object with vcpu, memoryGiB and hourly", source=source, field=where)
    return InstancePrice(
        instance_type=name,
        vcpu=number(spec.get("vcpu"), source, f"{where}.vcpu", positive=True),
        memory_gib=number(spec.get("memoryGiB"), source, f"{where}.memoryGiB", positive=True),
        hourly=number(spec.get("hourly"), source, f"{where}.hourly", positive=True),
        arch=str(spec.get("arch", "x86_64")),
        source=price_source,
        detail=detail,
    )


def volume(name: str, spec: Any, source: str, *, where_prefix: str = "ebs") -> VolumePrice:
    where = f"{where_prefix}.{name}"
    if not isinstance(spec, dict):
        raise ConfigError("expected an object with at least gbMonth", source=source, field=where)
    raw_tiers = spec.get("iopsTiers") or []
    if not isinstance(raw_tiers, list) or not all(isinstance(t, dict) for t in raw_tiers):
        raise ConfigError("expected a list of {upTo, iopsMonth} objects", source=source, field=f"{where}.iopsTiers")
    tiers = tuple(
        (None if t.get("upTo") is None else int(number(t["upTo"], source, f"{where}.iopsTiers[{i}].upTo")),
         number(t.get("iopsMonth"), source, f"{where}.iopsTiers[{i}].iopsMonth"))
        for i, t in enumerate(raw_tiers))
    return VolumePrice(
        volume_type=name,
        gb_month=number(spec.get("gbMonth"), source, f"{where}.gbMonth"),
        iops_month=number(spec.get("iopsMonth", 0.0), source, f"{where}.iopsMonth"),
        included_iops=int(number(spec.get("includedIops", 0), source, f"{where}.includedIops")),
        iops_tiers=tiers,
        throughput_mibps_month=number(spec.get("throughputMiBpsMonth", 0.0), source, f"{where}.throughputMiBpsMonth"),
        included_throughput_mibps=int(number(spec.get("includedThroughputMiBps", 0), source,
                                             f"{where}.includedThroughputMiBps")),
    )
