"""The price book: a bundled, dated list-price table for EC2 nodes and EBS volumes.

The default table is ``finops_operator/data/prices-aws-us-east-1.json``: on-demand
Linux hourly prices for common instance types (with vCPU and memory), EBS GB-month
prices per volume type, gp3/io1/io2 IOPS and gp3 throughput prices, and snapshot
storage. The file says where its figures come from (``source``) and when
(``retrieved``); they are list prices, to be checked against your own bill.

Spot nodes are priced ``on-demand x (1 - spot.discount)``; the discount is a
planning assumption documented in the file and can be overridden per book.

Example::

    book = PriceBook.load()                      # bundled us-east-1 table
    book.node_hourly("m5.xlarge")                # 0.192
    book.node_hourly("m5.xlarge", "spot")        # 0.192 x (1 - 0.6)
    book.volume_monthly("gp3", 100, iops=6000)   # 8.0 + 3000 x 0.005
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError

HOURS_PER_MONTH = 730.0
DEFAULT_TABLE = "prices-aws-us-east-1.json"


@dataclass(frozen=True, slots=True)
class InstancePrice:
    """One EC2 instance type: list price per hour and its size."""

    instance_type: str
    vcpu: float
    memory_gib: float
    hourly: float
    arch: str = "x86_64"


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


@dataclass(slots=True)
class PriceBook:
    """Prices for one region; built from a JSON table by :meth:`load`."""

    region: str
    source: str
    retrieved: str
    instances: dict[str, InstancePrice]
    volumes: dict[str, VolumePrice]
    snapshot_gb_month: float
    spot_discount: float = 0.6
    cpu_reference: float = 0.031611
    memory_reference: float = 0.004237
    default_instance_type: str = "m5.xlarge"
    hours_per_month: float = HOURS_PER_MONTH
    path: str = DEFAULT_TABLE
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path | None = None, *, spot_discount: float | None = None) -> "PriceBook":
        """Load a price table (the bundled us-east-1 one when ``path`` is None)."""
        if path is None:
            where = f"finops_operator/data/{DEFAULT_TABLE}"
            text = resources.files("finops_operator").joinpath("data", DEFAULT_TABLE).read_text()
        else:
            where = str(path)
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"cannot read the price table: {exc.strerror}; pass an existing JSON file",
                                  source=where) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
                              source=where) from None
        book = cls.from_dict(data, source_name=where)
        if spot_discount is not None:
            book.spot_discount = _fraction(spot_discount, where, "spot.discount")
        return book

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source_name: str = "price table") -> "PriceBook":
        """Validate a parsed table; errors name the field and what to write instead."""
        if not isinstance(data, dict):
            raise ConfigError("expected a JSON object at the top level", source=source_name)
        instances = {name: _instance(name, spec, source_name)
                     for name, spec in _section(data, "instances", source_name).items()}
        volumes = {name: _volume(name, spec, source_name)
                   for name, spec in _section(data, "ebs", source_name).items()}
        alloc = data.get("allocation", {}) or {}
        spot = data.get("spot", {}) or {}
        book = cls(
            region=str(data.get("region", "unknown")),
            source=str(data.get("source", "unknown")),
            retrieved=str(data.get("retrieved", "unknown")),
            instances=instances,
            volumes=volumes,
            snapshot_gb_month=_number((data.get("snapshot") or {}).get("gbMonth", 0.05),
                                      source_name, "snapshot.gbMonth"),
            spot_discount=_fraction(spot.get("discount", 0.6), source_name, "spot.discount"),
            cpu_reference=_number(alloc.get("cpuCoreHour", 0.031611), source_name, "allocation.cpuCoreHour",
                                  positive=True),
            memory_reference=_number(alloc.get("memoryGiBHour", 0.004237), source_name,
                                     "allocation.memoryGiBHour", positive=True),
            default_instance_type=str(alloc.get("defaultInstanceType", "m5.xlarge")),
            hours_per_month=_number(data.get("hoursPerMonth", HOURS_PER_MONTH), source_name, "hoursPerMonth",
                                    positive=True),
            path=source_name,
        )
        if book.default_instance_type not in instances:
            raise ConfigError(f"default instance type {book.default_instance_type!r} is not in 'instances'; "
                              "name one of the listed types", source=source_name,
                              field="allocation.defaultInstanceType")
        return book

    # ------------------------------------------------------------------ lookups

    def instance(self, instance_type: str) -> InstancePrice:
        """The price entry of ``instance_type``; unknown types raise a ConfigError naming it."""
        found = self.instances.get(instance_type)
        if found is None:
            family = instance_type.split(".")[0]
            similar = sorted(t for t in self.instances if t.split(".")[0] == family)
            hint = f" (known {family} sizes: {', '.join(similar)})" if similar else ""
            raise ConfigError(
                f"no price for instance type {instance_type!r} in region {self.region}{hint}; "
                "add it to the price table's 'instances' or load your own table",
                source=self.path, field=f"instances.{instance_type}")
        return found

    def node_hourly(self, instance_type: str, capacity_type: str = "on-demand") -> float:
        """Hourly price of one node; spot nodes get the documented discount."""
        price = self.instance(instance_type).hourly
        if capacity_type.lower() == "spot":
            return price * (1.0 - self.spot_discount)
        return price

    def node_monthly(self, instance_type: str, capacity_type: str = "on-demand") -> float:
        return self.node_hourly(instance_type, capacity_type) * self.hours_per_month

    def volume(self, volume_type: str) -> VolumePrice:
        found = self.volumes.get(volume_type)
        if found is None:
            raise ConfigError(
                f"no price for EBS volume type {volume_type!r} (known: {', '.join(sorted(self.volumes))}); "
                "add it to the price table's 'ebs' section", source=self.path, field=f"ebs.{volume_type}")
        return found

    def volume_monthly_parts(self, volume_type: str, size_gib: float, *, iops: int | None = None,
                             throughput: int | None = None) -> dict[str, float]:
        """Monthly cost split into storage, IOPS and throughput (USD)."""
        if size_gib < 0:
            raise ConfigError(f"volume size {size_gib} GiB is negative", field="size_gib")
        price = self.volume(volume_type)
        parts = {"storage": size_gib * price.gb_month, "iops": 0.0, "throughput": 0.0}
        if iops:
            parts["iops"] = _iops_cost(price, iops)
        if throughput and price.throughput_mibps_month:
            extra = max(0, throughput - price.included_throughput_mibps)
            parts["throughput"] = extra * price.throughput_mibps_month
        return parts

    def volume_monthly(self, volume_type: str, size_gib: float, *, iops: int | None = None,
                       throughput: int | None = None) -> float:
        """Monthly cost of one EBS volume: storage + provisioned IOPS/throughput above the included."""
        return sum(self.volume_monthly_parts(volume_type, size_gib, iops=iops, throughput=throughput).values())

    def snapshot_monthly(self, size_gib: float) -> float:
        """Upper bound of a full snapshot's monthly storage (snapshots store used blocks only)."""
        return size_gib * self.snapshot_gb_month


# ---------------------------------------------------------------------- parsing helpers


def _iops_cost(price: VolumePrice, iops: int) -> float:
    billable = max(0, iops - price.included_iops)
    if not price.iops_tiers:
        return billable * price.iops_month
    cost, floor = 0.0, 0
    for upto, rate in price.iops_tiers:
        top = billable if upto is None else min(billable, upto)
        if top > floor:
            cost += (top - floor) * rate
        if upto is None or billable <= upto:
            break
        floor = upto
    return cost


def _section(data: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    section = data.get(name)
    if not isinstance(section, dict) or not section:
        raise ConfigError(f"missing or empty '{name}' object; see the bundled {DEFAULT_TABLE} for the shape",
                          source=source, field=name)
    return section


def _number(value: Any, source: str, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"expected a number, got {value!r}", source=source, field=where)
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"expected a {'positive' if positive else 'non-negative'} number, got {value!r}",
                          source=source, field=where)
    return float(value)


def _fraction(value: Any, source: str, where: str) -> float:
    number = _number(value, source, where)
    if number >= 1:
        raise ConfigError(f"expected a fraction between 0 and 1 (0.6 = 60% off), got {value!r}",
                          source=source, field=where)
    return number


def _instance(name: str, spec: Any, source: str) -> InstancePrice:
    where = f"instances.{name}"
    if not isinstance(spec, dict):
        raise ConfigError("expected an object with vcpu, memoryGiB and hourly", source=source, field=where)
    return InstancePrice(
        instance_type=name,
        vcpu=_number(spec.get("vcpu"), source, f"{where}.vcpu", positive=True),
        memory_gib=_number(spec.get("memoryGiB"), source, f"{where}.memoryGiB", positive=True),
        hourly=_number(spec.get("hourly"), source, f"{where}.hourly", positive=True),
        arch=str(spec.get("arch", "x86_64")),
    )


def _volume(name: str, spec: Any, source: str) -> VolumePrice:
    where = f"ebs.{name}"
    if not isinstance(spec, dict):
        raise ConfigError("expected an object with at least gbMonth", source=source, field=where)
    tiers = tuple(
        (None if t.get("upTo") is None else int(t["upTo"]),
         _number(t.get("iopsMonth"), source, f"{where}.iopsTiers[{i}].iopsMonth"))
        for i, t in enumerate(spec.get("iopsTiers") or []))
    return VolumePrice(
        volume_type=name,
        gb_month=_number(spec.get("gbMonth"), source, f"{where}.gbMonth"),
        iops_month=_number(spec.get("iopsMonth", 0.0), source, f"{where}.iopsMonth"),
        included_iops=int(_number(spec.get("includedIops", 0), source, f"{where}.includedIops")),
        iops_tiers=tiers,
        throughput_mibps_month=_number(spec.get("throughputMiBpsMonth", 0.0), source,
                                       f"{where}.throughputMiBpsMonth"),
        included_throughput_mibps=int(_number(spec.get("includedThroughputMiBps", 0), source,
                                              f"{where}.includedThroughputMiBps")),
    )
