"""User price overrides: per-type prices, a discount on list prices, a spot discount, a custom table.

What ``spec.pricing`` of a FinOpsPolicy says, applied to a :class:`.catalog.PriceBook`
(pure: the ConfigMap holding a custom table is read by ``api/wiring.py``)::

    overrides = PriceOverrides(instance_prices={"m5.xlarge": 0.15}, discount_percent=12, spot_discount_percent=65)
    book = apply_overrides(PriceBook.for_region("eu-west-1"), overrides)
    book.node_price("m5.xlarge")   # NodePrice(0.15, USER, "m5.xlarge: 0.15 USD/h from ... spec.pricing.instancePrices")
    book.node_price("c5.large")    # NodePrice(0.0845, USER, "... less the 12% discount of ...discountPercent")

A custom table (on-prem clusters, or any cluster with its own rates) replaces the
bundled book. It is currency-free (USD is assumed; another ``currency`` is refused)
and names node types by the value of a node label::

    nodeLabel: node.kubernetes.io/instance-type     # optional, this is the default
    nodeTypes:
      rack-a-large: {hourly: 0.42, vcpu: 32, memoryGiB: 128}
      gpu-node:     {hourly: 2.10, vcpu: 16, memoryGiB: 64}
    storage:                                        # optional: GB-month per volume type / StorageClass
      ceph-rbd: {gbMonth: 0.03}
    controlPlaneHourly: 0                           # optional, default 0

User prices are never discounted (the discount applies to list and live prices only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from ..errors import ConfigError
from ..models.costs import PriceSource
from . import tables
from .catalog import PriceBook
from .tables import InstancePrice

DEFAULT_NODE_LABEL = "node.kubernetes.io/instance-type"
WHERE = "spec.pricing"


@dataclass(frozen=True, slots=True)
class PriceOverrides:
    """The user's word on prices (``spec.pricing``), in numbers (USD per hour, percentages 0-100)."""

    instance_prices: Mapping[str, float] = field(default_factory=dict)
    discount_percent: float = 0.0
    spot_discount_percent: float | None = None
    source: str = "policy"                   # names the policy in errors and details ("FinOpsPolicy ns/name")

    def __post_init__(self) -> None:
        if not 0 <= self.discount_percent < 100:
            raise ConfigError(f"discount {self.discount_percent!r}% must be from 0 to 99", source=self.source,
                              field=f"{WHERE}.discountPercent")
        if self.spot_discount_percent is not None and not 0 <= self.spot_discount_percent < 100:
            raise ConfigError(f"spot discount {self.spot_discount_percent!r}% must be from 0 to 99",
                              source=self.source, field=f"{WHERE}.spotDiscountPercent")
        for name, hourly in self.instance_prices.items():
            if isinstance(hourly, bool) or not isinstance(hourly, (int, float)) or not hourly > 0:
                raise ConfigError(f"price {hourly!r} for {name!r} must be a positive number of USD per hour",
                                  source=self.source, field=f"{WHERE}.instancePrices.{name}")


def apply_overrides(book: PriceBook, overrides: PriceOverrides) -> PriceBook:
    """A new book with the user's prices; the bundled entries keep their list source."""
    instances = dict(book.instances)
    for name, hourly in overrides.instance_prices.items():
        known = instances.get(name)
        if known is None:
            raise ConfigError(
                f"{name!r} has a price but no size: the {book.region} book does not list it, so its vCPU and "
                "memory are unknown; describe it in a custom table (spec.pricing.configMapRef: nodeTypes with "
                "hourly, vcpu and memoryGiB) or fix the type's name", source=overrides.source,
                field=f"{WHERE}.instancePrices.{name}")
        detail = f"{name}: {float(hourly):g} USD/h from {overrides.source} {WHERE}.instancePrices"
        instances[name] = InstancePrice(name, known.vcpu, known.memory_gib, float(hourly), known.arch,
                                        PriceSource.USER, detail)
    changes: dict[str, Any] = {"instances": instances, "discount_percent": overrides.discount_percent}
    if overrides.spot_discount_percent is not None:
        changes.update(spot_discount=overrides.spot_discount_percent / 100.0, spot_discount_source=PriceSource.USER)
    return book.copy(**changes)


def parse_table_text(text: str, *, source: str) -> dict[str, Any]:
    """A custom table's text (YAML or JSON) as a mapping; errors name the source."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"the price table is not valid YAML or JSON{where}: {getattr(exc, 'problem', exc)}",
                          source=source) from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping with nodeTypes, got {type(data).__name__}", source=source)
    return data


def custom_book(data: dict[str, Any], *, source: str, region: str = "custom") -> PriceBook:
    """A book from a user's custom table (every price in it is a USER price)."""
    tables.check_currency(data, source)
    known = ("nodeLabel", "nodeTypes", "storage", "controlPlaneHourly", "currency", "note")
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}; known keys: {', '.join(known)}", source=source,
                          field=unknown[0])
    node_label = data.get("nodeLabel", DEFAULT_NODE_LABEL)
    if not isinstance(node_label, str) or not node_label:
        raise ConfigError(f"expected a node label name, got {node_label!r}", source=source, field="nodeLabel")
    shape = "write nodeTypes: {<label value>: {hourly: 0.42, vcpu: 32, memoryGiB: 128}}"
    types = tables.section(data, "nodeTypes", source, shape=shape)
    instances = {str(name): tables.instance(str(name), spec, source, where_prefix="nodeTypes",
                                            price_source=PriceSource.USER,
                                            detail=f"{name}: custom table {source}")
                 for name, spec in types.items()}
    storage = data.get("storage") or {}
    if not isinstance(storage, dict):
        raise ConfigError("expected a mapping of volume type to {gbMonth: ...}", source=source, field="storage")
    volumes = {str(name): tables.volume(str(name), spec, source, where_prefix="storage")
               for name, spec in storage.items()}
    return PriceBook(region=region, source=f"custom price table {source}", retrieved="user-supplied",
                     instances=instances, volumes=volumes, snapshot_gb_month=0.0,
                     default_instance_type=sorted(instances)[0], path=source, spot_discount_source=PriceSource.USER,
                     control_plane_hourly=tables.number(data.get("controlPlaneHourly", 0.0), source,
                                                        "controlPlaneHourly"),
                     node_label=node_label)
