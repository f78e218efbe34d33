"""Live prices from AWS: on-demand list prices (Price List API) and spot prices per zone (EC2).

    prices = AwsPrices("eu-west-1", cache=CostCache(path, ttl=timedelta(hours=24)))
    prices.on_demand(["m5.xlarge", "c6g.large"])     # {type: LiveQuote}  pricing:GetProducts
    prices.spot(["m5.xlarge"], ["eu-west-1a"])       # SpotQuotes         ec2:DescribeSpotPriceHistory

``pricing:GetProducts`` is answered by the Price List endpoint in us-east-1 whatever
the cluster's region; one request per instance type, filtered to Linux, shared
tenancy, no pre-installed software, capacity status Used, in the cluster's region
(``regionCode``). Its ``PriceList`` entries are JSON strings; the hourly price is
the ``OnDemand`` term's price dimension in ``Hrs``. An answer priced in anything
but USD is refused. ``ec2:DescribeSpotPriceHistory`` (Linux/UNIX, starting now)
gives the price in effect per type and zone; the latest one per pair is kept.

Answers are cached (:class:`.cost_cache.CostCache`): on-demand prices for the
cache's TTL (list prices change rarely), spot prices for ``spot_ttl`` (one hour by
default). Calls, retries, throttling and errors are :class:`.aws.AwsSource`'s.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from ..errors import DataSourceError
from ..models.costs import CURRENCY
from ..pricing.live import LiveQuote, SpotQuotes
from .aws import AwsSource
from .cost_cache import CostCache, utcnow

PRICE_LIST_REGION = "us-east-1"   # the Price List API endpoint (ap-south-1 and eu-central-1 also serve it)
LINUX_FILTERS = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}


class AwsPrices(AwsSource):
    """On-demand and spot prices of one region, through AwsSource's calls, retries and errors."""

    def __init__(self, region: str, *, spot_ttl: timedelta = timedelta(hours=1), **kwargs: Any):
        super().__init__(region, **kwargs)
        self.spot_cache = CostCache(ttl=spot_ttl, clock=self.cache.clock)

    def _client(self, service: str) -> Any:
        if service == "pricing" and service not in self._clients:
            self._clients[service] = self._session.client(service, region_name=PRICE_LIST_REGION,
                                                          config=self._config, endpoint_url=self.endpoint_url)
        return super()._client(service)

    # ------------------------------------------------------------------ on-demand

    def on_demand(self, instance_types: Iterable[str]) -> dict[str, LiveQuote]:
        """Linux on-demand prices of these types in this region; types the API does not list are left out."""
        out: dict[str, LiveQuote] = {}
        for name in sorted(set(instance_types)):
            key = {"region": self.region, "instanceType": name, **LINUX_FILTERS}
            found = self._cached("GetProducts", key, lambda name=name: self._product(name))
            if found.get("hourly"):
                out[name] = LiveQuote(name, found["hourly"], found["vcpu"], found["memoryGiB"],
                                      f"AWS Price List API (pricing:GetProducts, {self.region}, effective "
                                      f"{found['effective'] or 'unknown'})", found["arch"])
        return out

    def _product(self, instance_type: str) -> dict[str, Any]:
        filters = [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in
                   {"instanceType": instance_type, "regionCode": self.region, **LINUX_FILTERS}.items()]
        items = self._pages("pricing", "get_products", {"ServiceCode": "AmazonEC2", "Filters": filters,
                                                        "FormatVersion": "aws_v1", "MaxResults": 100},
                            "PriceList", "NextToken", "NextToken")
        quotes = [q for q in (parse_product(item, self.region) for item in items) if q is not None]
        if not quotes:
            return {"hourly": None}
        return min(quotes, key=lambda q: q["hourly"])    # several SKUs: the plain RunInstances one is cheapest

    # ------------------------------------------------------------------ spot

    def spot(self, instance_types: Iterable[str], zones: Iterable[str]) -> SpotQuotes:
        """The spot price in effect now per (type, zone), Linux/UNIX."""
        types, zones = sorted(set(instance_types)), sorted(set(zones))
        key = {"region": self.region, "types": types, "zones": zones}
        rows = self.spot_cache.get("DescribeSpotPriceHistory", key)
        if rows is None:
            rows = self._spot_rows(types, zones)
            self.spot_cache.put("DescribeSpotPriceHistory", key, rows)
        else:
            self.cache_hits += 1
        latest: dict[tuple[str, str], tuple[str, float]] = {}
        for row in rows:
            pair = (row["type"], row["zone"])
            if pair not in latest or row["at"] > latest[pair][0]:
                latest[pair] = (row["at"], row["price"])
        newest = max((at for at, _ in latest.values()), default="none")
        return SpotQuotes({pair: price for pair, (_, price) in latest.items()},
                          f"ec2:DescribeSpotPriceHistory in {self.region} (Linux/UNIX, latest {newest[:19]})")

    def _spot_rows(self, types: list[str], zones: list[str]) -> list[dict[str, Any]]:
        params = {"InstanceTypes": types, "ProductDescriptions": ["Linux/UNIX"], "StartTime": utcnow(),
                  "Filters": [{"Name": "availability-zone", "Values": zones}], "MaxResults": 1000}
        items = self._pages("ec2", "describe_spot_price_history", params, "SpotPriceHistory", "NextToken",
                            "NextToken")
        rows = []
        for item in items:
            try:
                price = float(item["SpotPrice"])
            except (KeyError, TypeError, ValueError):
                raise DataSourceError(f"a spot price entry has no number in SpotPrice: {str(item)[:200]}",
                                      source=f"aws ec2 ({self.region})", field="DescribeSpotPriceHistory") from None
            if price > 0 and item.get("AvailabilityZone") in zones:
                at = item.get("Timestamp")
                rows.append({"type": item["InstanceType"], "zone": item["AvailabilityZone"], "price": price,
                             "at": at.astimezone(timezone.utc).isoformat() if isinstance(at, datetime) else str(at)})
        return rows


def parse_product(item: str | dict[str, Any], region: str) -> dict[str, Any] | None:
    """One PriceList entry (a JSON string) -> {hourly, vcpu, memoryGiB, arch, effective}; None without an hourly
    price; a price in another currency than USD is refused."""
    where = f"aws pricing ({region})"
    try:
        product = json.loads(item) if isinstance(item, str) else item
        attributes = product["product"]["attributes"]
        terms = product.get("terms", {}).get("OnDemand", {})
    except (ValueError, KeyError, TypeError):
        raise DataSourceError(f"a PriceList entry is not the documented product JSON: {str(item)[:200]}",
                              source=where, field="GetProducts") from None
    for term in terms.values():
        for dimension in term.get("priceDimensions", {}).values():
            price = dimension.get("pricePerUnit", {})
            if dimension.get("unit") != "Hrs":
                continue
            if CURRENCY not in price:
                raise DataSourceError(f"the Price List answer is priced in {', '.join(price) or 'nothing'}, not "
                                      f"{CURRENCY}; prices in other currencies are refused", source=where,
                                      field="GetProducts")
            hourly = float(price[CURRENCY])
            if hourly > 0:
                return {"hourly": hourly, "vcpu": float(attributes.get("vcpu", 0) or 0),
                        "memoryGiB": _gib(attributes.get("memory", "")),
                        "arch": "arm64" if "graviton" in attributes.get("physicalProcessor", "").lower() else "x86_64",
                        "effective": str(term.get("effectiveDate", ""))[:10]}
    return None


def _gib(text: str) -> float:
    """'16 GiB' -> 16.0; '1,952 GiB' -> 1952.0; unparseable -> 0.0 (the size is then unknown)."""
    try:
        return float(text.split()[0].replace(",", ""))
    except (IndexError, ValueError):
        return 0.0
