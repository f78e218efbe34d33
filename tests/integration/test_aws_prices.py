"""Live prices: spot prices from moto's server on loopback, Price List answers through botocore's Stubber.

* ``ec2:DescribeSpotPriceHistory`` is served by moto (server mode, behind the
  recording/throttling proxy of tests/support/fixtures_moto.py): moto answers
  every instance type it offers in the requested zones with the price "0.00001"
  and a fixed timestamp, in EC2's real wire format.
* ``pricing:GetProducts``: moto does not implement the AWS Price List service at
  all, so these tests put botocore's ``Stubber`` on the real ``pricing`` client
  and answer with the documented response shape (``FormatVersion`` aws_v1,
  ``PriceList`` as JSON strings of product + terms.OnDemand.priceDimensions,
  ``NextToken``); the Stubber also checks every request against the service model.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from botocore.stub import Stubber

from finops_operator.errors import DataSourceError
from finops_operator.models import Node
from finops_operator.models.costs import PriceSource
from finops_operator.pricing import PriceBook, PriceOverrides, Pricing, apply_overrides
from finops_operator.sources.awsprices import AwsPrices
from finops_operator.sources.cost_cache import CostCache

pytestmark = pytest.mark.integration
REGION = "eu-west-1"


def product(instance_type: str, usd: str, *, vcpu: str = "4", memory: str = "16 GiB", processor: str = "Intel Xeon",
            currency: str = "USD") -> str:
    """One PriceList entry as the API returns it: a JSON string."""
    sku = f"SKU{abs(hash((instance_type, usd))) % 10**8}"
    return json.dumps({
        "product": {"productFamily": "Compute Instance", "sku": sku, "attributes": {
            "instanceType": instance_type, "vcpu": vcpu, "memory": memory, "physicalProcessor": processor,
            "operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used",
            "regionCode": REGION, "location": "EU (Ireland)"}},
        "serviceCode": "AmazonEC2",
        "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {
            "offerTermCode": "JRTCKXETXF", "sku": sku, "effectiveDate": "2024-05-01T00:00:00Z",
            "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                "unit": "Hrs", "pricePerUnit": {currency: usd}, "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
                "description": f"${usd} per On Demand Linux {instance_type} Instance Hour"}}}}},
        "version": "20240501000000", "publicationDate": "2024-05-01T00:00:00Z"})


def expected_request(instance_type: str, token: str | None = None) -> dict:
    filters = [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in (
        ("instanceType", instance_type), ("regionCode", REGION), ("operatingSystem", "Linux"),
        ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used"))]
    request = {"ServiceCode": "AmazonEC2", "Filters": filters, "FormatVersion": "aws_v1", "MaxResults": 100}
    if token:
        request["NextToken"] = token
    return request


@pytest.fixture
def stubbed(aws_session):
    prices = AwsPrices(REGION, session=aws_session, cache=CostCache(ttl=timedelta(hours=24)))
    client = prices._client("pricing")
    assert client.meta.region_name == "us-east-1"      # the Price List endpoint, whatever the cluster's region
    with Stubber(client) as stub:
        yield prices, stub
        stub.assert_no_pending_responses()


def test_get_products_pages_are_parsed_and_cached(stubbed):
    prices, stub = stubbed
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [], "NextToken": "page-2"},
                      expected_request("m5.xlarge"))
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [product("m5.xlarge", "0.2140000000")]},
                      expected_request("m5.xlarge", "page-2"))
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [
        product("m7g.large", "0.0912000000", vcpu="2", memory="8 GiB", processor="AWS Graviton3 Processor")]},
        expected_request("m7g.large"))
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []}, expected_request("x9.huge"))

    quotes = prices.on_demand(["m5.xlarge", "m7g.large", "x9.huge"])
    assert set(quotes) == {"m5.xlarge", "m7g.large"}            # a type the API does not list is left out
    assert quotes["m5.xlarge"].hourly == pytest.approx(0.214)
    assert (quotes["m5.xlarge"].vcpu, quotes["m5.xlarge"].memory_gib) == (4.0, 16.0)
    assert quotes["m7g.large"].arch == "arm64" and quotes["m7g.large"].memory_gib == 8.0
    assert "pricing:GetProducts" in quotes["m5.xlarge"].detail and "2024-05-01" in quotes["m5.xlarge"].detail
    assert prices.calls["pricing:get_products"] == 4

    again = prices.on_demand(["m5.xlarge", "x9.huge"])          # the cache answers; no stubbed response is left
    assert again["m5.xlarge"].hourly == pytest.approx(0.214) and "x9.huge" not in again
    assert prices.cache_hits == 2


def test_a_price_in_another_currency_is_refused(stubbed):
    prices, stub = stubbed
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [
        product("m5.xlarge", "1.36", currency="CNY")]}, expected_request("m5.xlarge"))
    with pytest.raises(DataSourceError, match="priced in CNY, not USD"):
        prices.on_demand(["m5.xlarge"])


def test_access_denied_names_the_iam_action(stubbed):
    prices, stub = stubbed
    stub.add_client_error("get_products", "AccessDeniedException", "not authorized",
                          expected_params=expected_request("m5.xlarge"))
    with pytest.raises(DataSourceError, match="pricing:GetProducts"):
        prices.on_demand(["m5.xlarge"])


def test_live_prices_feed_the_book_and_say_so(stubbed):
    prices, stub = stubbed
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [product("m5.xlarge", "0.2200000000")]},
                      expected_request("m5.xlarge"))
    book = apply_overrides(PriceBook.for_region(REGION), PriceOverrides(instance_prices={"c5.large": 0.05}))
    pricing = Pricing(book, live=prices)
    nodes = [Node("a", "m5.xlarge", "ng", 4, 16 << 30, zone="eu-west-1a"),
             Node("b", "c5.large", "ng", 2, 4 << 30, zone="eu-west-1a")]
    priced = pricing.book_for(nodes)           # c5.large is the user's: not asked for
    live = priced.node_price("m5.xlarge")
    assert (live.hourly, live.source) == (pytest.approx(0.22), PriceSource.LIVE)
    assert priced.node_price("c5.large").source is PriceSource.USER
    assert pricing.book.node_price("m5.xlarge").source is PriceSource.LIST     # the wired book is unchanged


def test_a_failing_live_lookup_falls_back_to_the_book_and_says_why(stubbed):
    prices, stub = stubbed
    stub.add_client_error("get_products", "ThrottlingException", "Rate exceeded",
                          expected_params=expected_request("m5.xlarge"))
    pricing = Pricing(PriceBook.for_region(REGION), live=prices)
    price = pricing.node_price(Node("a", "m5.xlarge", "ng", 4, 16 << 30, zone="eu-west-1a"))
    assert price.source is PriceSource.LIST and price.hourly == pytest.approx(0.214)
    assert len(pricing.problems) == 1 and "live on-demand prices unavailable" in pricing.problems[0]
    assert "throttled" in pricing.problems[0]


# --------------------------------------------------------------------------- spot, on moto's server


def spot_source(aws_endpoint, aws_session) -> AwsPrices:
    return AwsPrices(REGION, endpoint_url=aws_endpoint.url, session=aws_session)


def test_spot_prices_per_type_and_zone_from_moto(aws_endpoint, aws_session):
    prices = spot_source(aws_endpoint, aws_session)
    quotes = prices.spot(["m5.xlarge", "c5.large"], ["eu-west-1a", "eu-west-1b"])
    assert set(quotes.prices) == {(t, z) for t in ("m5.xlarge", "c5.large") for z in ("eu-west-1a", "eu-west-1b")}
    assert all(p == pytest.approx(0.00001) for p in quotes.prices.values())      # moto's fixed answer
    assert "ec2:DescribeSpotPriceHistory" in quotes.detail
    assert aws_endpoint.count("DescribeSpotPriceHistory") == 1
    prices.spot(["c5.large", "m5.xlarge"], ["eu-west-1b", "eu-west-1a"])       # same request: cached
    assert aws_endpoint.count("DescribeSpotPriceHistory") == 1 and prices.cache_hits == 1


def test_spot_nodes_take_their_zones_price(aws_endpoint, aws_session):
    pricing = Pricing(PriceBook.for_region(REGION), live=spot_source(aws_endpoint, aws_session))
    pricing.live.on_demand = lambda types: {}                 # on-demand is the Stubber's business above
    node = Node("s", "m5.xlarge", "spot-ng", 4, 16 << 30, zone="eu-west-1b", capacity_type="spot")
    price = pricing.node_price(node)
    assert (price.hourly, price.source) == (pytest.approx(0.00001), PriceSource.SPOT)
    assert "eu-west-1b" in price.detail


def test_throttled_spot_requests_are_retried(aws_endpoint, aws_session):
    aws_endpoint.throttle("DescribeSpotPriceHistory", 2)
    prices = spot_source(aws_endpoint, aws_session)
    quotes = prices.spot(["m5.xlarge"], ["eu-west-1a"])
    assert quotes.prices == {("m5.xlarge", "eu-west-1a"): pytest.approx(0.00001)}
    assert aws_endpoint.count("DescribeSpotPriceHistory") == 3 and prices.retries == 2


def test_spot_lookup_that_keeps_failing_is_a_stated_fallback(aws_endpoint, aws_session):
    aws_endpoint.throttle("DescribeSpotPriceHistory", 10)
    prices = AwsPrices(REGION, endpoint_url=aws_endpoint.url, session=aws_session, max_attempts=2)
    prices.on_demand = lambda types: {}
    pricing = Pricing(PriceBook.for_region(REGION), live=prices)
    price = pricing.node_price(Node("s", "m5.xlarge", "spot-ng", 4, 16 << 30, zone="eu-west-1a",
                                    capacity_type="spot"))
    assert price.source is PriceSource.LIST and price.hourly == pytest.approx(0.214 * 0.4)
    assert "spot estimated" in price.detail
    assert any("spot prices unavailable" in p for p in pricing.problems)
