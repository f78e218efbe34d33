"""The price book: a dated list-price table of one region for EC2 nodes, EBS volumes and EKS.

One JSON book per region is bundled (``finops_operator/data/prices-aws-<region>.json``,
:func:`.tables.bundled_regions`): on-demand Linux hourly prices for the instance
families people run on EKS (with vCPU and memory), EBS GB-month prices per volume
type, gp3/io1/io2 IOPS and gp3 throughput prices, snapshot storage and the EKS
cluster fee. Each file says where its figures come from (``source``) and as of
when (``asOf``); they are list prices, to be checked against your own bill.

Every price handed out says where it came from (:meth:`PriceBook.node_price` ->
``NodePrice`` with a ``PriceSource`` and a sentence): the book's list price, a
user override (``spec.pricing``: per-type prices, a discount percent, a custom
table), a live Price List answer or an observed spot price
(:mod:`.overrides`, :mod:`.live`). Spot nodes without an observed price are priced
``on-demand x (1 - spot discount)``, a planning assumption stated in the detail.

Example::

    book = PriceBook.for_region("eu-central-1")  # bundled book; ConfigError for a region without one
    book.node_hourly("m5.xlarge")                # 0.23
    book.node_price("m5.xlarge", "spot")         # NodePrice(0.092, LIST, "... spot estimated ...")
    book.volume_monthly("gp3", 100, iops=6000)   # storage + 3000 extra IOPS
    book.control_plane_hourly                    # 0.10 (EKS standard support)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..models.costs import NodePrice, PriceSource
from . import tables
from .tables import InstancePrice, VolumePrice

HOURS_PER_MONTH = 730.0
DEFAULT_REGION = "us-east-1"
DEFAULT_TABLE = f"{tables.BOOK_PREFIX}{DEFAULT_REGION}{tables.BOOK_SUFFIX}"
OVERRIDE_HINT = ("supply your own table: spec.pricing.configMapRef (a ConfigMap in the policy's namespace holding "
                 "the full table), or PriceBook.load(path) with a file shaped like the bundled "
                 f"finops_operator/data/{DEFAULT_TABLE}")


@dataclass(slots=True)
class PriceBook:
    """Prices for one region; built from a JSON table by :meth:`load` / :meth:`for_region`."""

    region: str
    source: str
    retrieved: str                          # the date the figures are believed current ("asOf" in the file)
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
    control_plane_hourly: float = 0.10      # EKS cluster fee, standard support
    control_plane_extended_hourly: float = 0.60   # EKS cluster fee, extended support
    discount_percent: float = 0.0           # user discount (EDP ...) on list and live prices
    spot_discount_source: PriceSource = PriceSource.LIST   # USER when spec.pricing set it
    spot_observed: dict[tuple[str, str], float] = field(default_factory=dict)   # (type, zone) -> USD/h
    spot_detail: str = ""                   # where observed spot prices came from
    node_label: str | None = None           # custom tables: the node label whose value names the type

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path | None = None, *, spot_discount: float | None = None) -> "PriceBook":
        """Load a price table (the bundled us-east-1 one when ``path`` is None)."""
        if path is None:
            return cls.for_region(DEFAULT_REGION, spot_discount=spot_discount)
        where = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the price table: {exc.strerror}; pass an existing JSON file",
                              source=where) from None
        return cls._parsed(text, where, spot_discount)

    @classmethod
    def for_region(cls, region: str, *, spot_discount: float | None = None) -> "PriceBook":
        """The bundled book of ``region``; a region without one is a ConfigError naming the known regions."""
        text = tables.bundled_text(region)
        if text is None:
            raise ConfigError(
                f"no bundled price book for region {region or '(none)'!r} (bundled: "
                f"{', '.join(tables.bundled_regions())}); {OVERRIDE_HINT}", source="price books", field="region")
        return cls._parsed(text, f"finops_operator/data/{tables.BOOK_PREFIX}{region}{tables.BOOK_SUFFIX}",
                           spot_discount)

    @classmethod
    def _parsed(cls, text: str, where: str, spot_discount: float | None) -> "PriceBook":
        book = cls.from_dict(tables.parse_json(text, where), source_name=where)
        if spot_discount is not None:
            book.spot_discount = tables.fraction(spot_discount, where, "spot.discount")
        return book

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source_name: str = "price table") -> "PriceBook":
        """Validate a parsed table; errors name the field and what to write instead."""
        if not isinstance(data, dict):
            raise ConfigError("expected a JSON object at the top level", source=source_name)
        tables.check_currency(data, source_name)
        shape = f"see the bundled {DEFAULT_TABLE} for the shape"
        instances = {name: tables.instance(name, spec, source_name)
                     for name, spec in tables.section(data, "instances", source_name, shape=shape).items()}
        volumes = {name: tables.volume(name, spec, source_name)
                   for name, spec in tables.section(data, "ebs", source_name, shape=shape).items()}
        alloc, spot, eks = (_object(data, key, source_name) for key in ("allocation", "spot", "eks"))
        book = cls(
            region=str(data.get("region", "unknown")),
            source=str(data.get("source", "unknown")),
            retrieved=str(data.get("asOf", data.get("retrieved", "unknown"))),
            instances=instances,
            volumes=volumes,
            snapshot_gb_month=tables.number(_object(data, "snapshot", source_name).get("gbMonth", 0.05),
                                            source_name, "snapshot.gbMonth"),
            spot_discount=tables.fraction(spot.get("discount", 0.6), source_name, "spot.discount"),
            cpu_reference=tables.number(alloc.get("cpuCoreHour", 0.031611), source_name, "allocation.cpuCoreHour",
                                        positive=True),
            memory_reference=tables.number(alloc.get("memoryGiBHour", 0.004237), source_name,
                                           "allocation.memoryGiBHour", positive=True),
            default_instance_type=str(alloc.get("defaultInstanceType", "m5.xlarge")),
            hours_per_month=tables.number(data.get("hoursPerMonth", HOURS_PER_MONTH), source_name, "hoursPerMonth",
                                          positive=True),
            path=source_name,
            control_plane_hourly=tables.number(eks.get("controlPlaneHourly", 0.10), source_name,
                                               "eks.controlPlaneHourly"),
            control_plane_extended_hourly=tables.number(eks.get("extendedSupportHourly", 0.60), source_name,
                                                        "eks.extendedSupportHourly"),
        )
        if book.default_instance_type not in instances:
            raise ConfigError(f"default instance type {book.default_instance_type!r} is not in 'instances'; "
                              "name one of the listed types", source=source_name,
                              field="allocation.defaultInstanceType")
        return book

    def copy(self, **changes: Any) -> "PriceBook":
        """A new book with ``changes``; the entry tables are copied, never shared with this one."""
        fresh = replace(self, instances=dict(self.instances), volumes=dict(self.volumes), notes=list(self.notes),
                        spot_observed=dict(self.spot_observed))
        for name, value in changes.items():
            setattr(fresh, name, value)
        return fresh

    # ------------------------------------------------------------------ lookups

    @property
    def label(self) -> str:
        """How a price from this book is described: its region, date and file."""
        return f"{self.region} price book as of {self.retrieved} ({self.path})"

    def instance(self, instance_type: str) -> InstancePrice:
        """The price entry of ``instance_type``; unknown types raise a ConfigError naming it."""
        found = self.instances.get(instance_type)
        if found is None:
            family = instance_type.split(".")[0]
            similar = sorted(t for t in self.instances if t.split(".")[0] == family)
            hint = f" (known {family} sizes: {', '.join(similar)})" if similar else ""
            raise ConfigError(
                f"no price for instance type {instance_type!r} in region {self.region}{hint}; add it with "
                "spec.pricing.instancePrices, turn on spec.pricing.live, or supply a table "
                "(spec.pricing.configMapRef)", source=self.path, field=f"instances.{instance_type}")
        return found

    def on_demand(self, instance_type: str) -> NodePrice:
        """The on-demand hourly price of one node and where it came from (discounts applied and said)."""
        entry = self.instance(instance_type)
        if entry.source is PriceSource.USER:
            return NodePrice(entry.hourly, PriceSource.USER, entry.detail or f"user price for {instance_type}")
        detail = entry.detail or f"{instance_type} list price {entry.hourly:g} USD/h, {self.label}"
        if not self.discount_percent:
            return NodePrice(entry.hourly, entry.source, detail)
        hourly = entry.hourly * (1.0 - self.discount_percent / 100.0)
        return NodePrice(hourly, PriceSource.USER,
                         f"{detail}, less the {self.discount_percent:g}% discount of spec.pricing.discountPercent")

    def node_price(self, instance_type: str, capacity_type: str = "on-demand", zone: str | None = None) -> NodePrice:
        """Hourly price of one node with its provenance.

        Spot: the observed spot price of the type in ``zone`` (any zone's mean when ``zone`` is None)
        when live prices were read, else on-demand x (1 - spot discount), said in the detail.
        """
        base = self.on_demand(instance_type)
        if capacity_type.lower() != "spot":
            return base
        observed = self._observed_spot(instance_type, zone)
        if observed is not None:
            return observed
        user = base.source is PriceSource.USER or self.spot_discount_source is PriceSource.USER
        whose = "spec.pricing.spotDiscountPercent" if self.spot_discount_source is PriceSource.USER \
            else "the book's planning assumption"
        return NodePrice(base.hourly * (1.0 - self.spot_discount), PriceSource.USER if user else base.source,
                         f"spot estimated as on-demand x (1 - {self.spot_discount:g}) ({whose}); on-demand: "
                         f"{base.detail}")

    def _observed_spot(self, instance_type: str, zone: str | None) -> NodePrice | None:
        if zone is not None and (instance_type, zone) in self.spot_observed:
            price = self.spot_observed[(instance_type, zone)]
            return NodePrice(price, PriceSource.SPOT, f"{instance_type} spot price in {zone}, {self.spot_detail}")
        if zone is None:
            seen = {z: p for (t, z), p in self.spot_observed.items() if t == instance_type}
            if seen:
                mean = sum(seen.values()) / len(seen)
                return NodePrice(mean, PriceSource.SPOT, f"{instance_type} mean spot price over "
                                 f"{', '.join(sorted(seen))}, {self.spot_detail}")
        return None

    def node_hourly(self, instance_type: str, capacity_type: str = "on-demand") -> float:
        """Hourly price of one node (see :meth:`node_price` for where it comes from)."""
        return self.node_price(instance_type, capacity_type).hourly

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


# ---------------------------------------------------------------------- helpers


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


def _object(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"expected an object, got {type(value).__name__}", source=source, field=key)
    return value
