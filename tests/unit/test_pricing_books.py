"""Regional price books, provenance, user overrides, custom tables and the policy's spec.pricing."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from finops_operator.api.policy import SecretRef, read_policy
from finops_operator.api.wiring import build_deps, policy_pricing
from finops_operator.errors import ConfigError, DataSourceError
from finops_operator.models import ClusterState, Node, Window
from finops_operator.models.costs import PriceSource
from finops_operator.pricing import (LiveQuote, PriceBook, PriceOverrides, Pricing, SpotQuotes, apply_overrides,
                                     book_for_state, bundled_regions, custom_book)
from finops_operator.pricing.overrides import parse_table_text

REQUIRED = {"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1"}
FAMILIES = {"m5", "m6i", "m7i", "c5", "c6i", "c7i", "r5", "r6i", "t3", "m6g", "m7g", "c6g", "c7g", "r6g"}
PRICIER = ("eu-central-1", "ap-southeast-1", "ap-northeast-1")
NOW = datetime(2026, 3, 2, tzinfo=UTC)


def raw(region: str) -> dict:
    return json.loads(resources.files("finops_operator").joinpath("data", f"prices-aws-{region}.json").read_text())


def node(name="n", instance_type="m5.xlarge", *, zone="eu-west-1a", capacity="on-demand", labels=None) -> Node:
    return Node(name, instance_type, "ng", 4, 16 << 30, zone=zone, capacity_type=capacity, labels=labels or {})


# --------------------------------------------------------------------------- the bundled books


def test_the_required_regions_have_a_book():
    assert REQUIRED <= set(bundled_regions())


@pytest.mark.parametrize("region", sorted(REQUIRED))
def test_every_book_is_dated_says_it_was_not_fetched_and_covers_eks_families(region):
    book, data = PriceBook.for_region(region), raw(region)
    assert book.region == region and data["currency"] == "USD"
    assert book.retrieved[:4].isdigit() and data["asOf"] == book.retrieved
    assert "NOT fetched" in data["source"] and "never retrieved" in data["note"] and book.retrieved in data["note"]
    assert {t.split(".")[0] for t in book.instances} >= FAMILIES
    assert set(book.volumes) >= {"gp2", "gp3", "io1", "io2", "st1", "sc1"} and book.snapshot_gb_month > 0
    assert (book.control_plane_hourly, book.control_plane_extended_hourly) == (0.10, 0.60)


def test_sizes_agree_across_regions_and_prices_differ_plausibly():
    base = PriceBook.for_region("us-east-1")
    for region in sorted(REQUIRED - {"us-east-1"}):
        book = PriceBook.for_region(region)
        assert set(book.instances) == set(base.instances), region
        for name, entry in book.instances.items():
            ref = base.instances[name]
            assert (entry.vcpu, entry.memory_gib, entry.arch) == (ref.vcpu, ref.memory_gib, ref.arch), name
            assert 1.0 <= entry.hourly / ref.hourly <= 1.4, (region, name)
            if region in PRICIER:
                assert entry.hourly > ref.hourly, (region, name)
        for kind in ("gp2", "gp3", "io1", "st1", "sc1"):
            assert book.volumes[kind].gb_month >= base.volumes[kind].gb_month, (region, kind)


def test_sizes_within_a_family_are_priced_linearly():
    book = PriceBook.for_region("eu-central-1")
    assert book.node_hourly("m5.2xlarge") == pytest.approx(4 * book.node_hourly("m5.large"))
    assert book.node_hourly("m5.xlarge") == pytest.approx(0.23)


def test_a_region_without_a_book_names_the_known_ones_and_the_override():
    with pytest.raises(ConfigError) as caught:
        PriceBook.for_region("sa-east-1")
    message = str(caught.value)
    assert "'sa-east-1'" in message and all(r in message for r in REQUIRED)
    assert "spec.pricing.configMapRef" in message


def test_an_unknown_instance_type_is_an_error_never_zero():
    with pytest.raises(ConfigError) as caught:
        PriceBook.for_region("us-west-2").node_price("m5.huge")
    assert "m5.huge" in str(caught.value) and "m5.xlarge" in str(caught.value)
    assert "spec.pricing.instancePrices" in str(caught.value)


def test_a_book_in_another_currency_is_refused(tmp_path):
    data = raw("eu-west-1") | {"currency": "EUR"}
    path = tmp_path / "eur.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as caught:
        PriceBook.load(path)
    assert caught.value.field == "currency" and "'EUR'" in str(caught.value) and "USD" in str(caught.value)


# --------------------------------------------------------------------------- provenance and overrides


def test_list_prices_say_where_they_come_from():
    price = PriceBook.for_region("eu-west-1").node_price("m5.xlarge")
    assert (price.hourly, price.source) == (pytest.approx(0.214), PriceSource.LIST)
    assert "eu-west-1 price book as of 2024-06-01" in price.detail
    spot = PriceBook.for_region("eu-west-1").node_price("m5.xlarge", "spot")
    assert spot.hourly == pytest.approx(0.214 * 0.4) and spot.source is PriceSource.LIST
    assert "spot estimated as on-demand x (1 - 0.6)" in spot.detail


def test_user_prices_discount_and_spot_discount():
    book = apply_overrides(PriceBook.for_region("eu-west-1"), PriceOverrides(
        instance_prices={"m5.xlarge": 0.15}, discount_percent=10, spot_discount_percent=70, source="FinOpsPolicy a/p"))
    mine = book.node_price("m5.xlarge")
    assert (mine.hourly, mine.source) == (0.15, PriceSource.USER)          # user prices are not discounted
    assert "FinOpsPolicy a/p spec.pricing.instancePrices" in mine.detail
    listed = book.node_price("c5.large")
    assert (listed.hourly, listed.source) == (pytest.approx(0.096 * 0.9), PriceSource.USER)
    assert "less the 10% discount of spec.pricing.discountPercent" in listed.detail
    spot = book.node_price("c5.large", "spot")
    assert spot.hourly == pytest.approx(0.096 * 0.9 * 0.3) and "spec.pricing.spotDiscountPercent" in spot.detail
    assert book.node_monthly("m5.xlarge") == pytest.approx(0.15 * 730)     # what the detectors call
    assert PriceBook.for_region("eu-west-1").node_hourly("m5.xlarge") == pytest.approx(0.214)   # book unchanged


def test_a_user_price_for_a_type_the_book_does_not_size_is_refused():
    with pytest.raises(ConfigError) as caught:
        apply_overrides(PriceBook.for_region("us-east-1"), PriceOverrides(instance_prices={"z9.big": 1.0}))
    assert caught.value.field == "spec.pricing.instancePrices.z9.big" and "custom table" in str(caught.value)


@pytest.mark.parametrize("kwargs, field", [
    ({"discount_percent": 100}, "spec.pricing.discountPercent"),
    ({"spot_discount_percent": -1}, "spec.pricing.spotDiscountPercent"),
    ({"instance_prices": {"m5.large": 0}}, "spec.pricing.instancePrices.m5.large"),
])
def test_bad_overrides_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as caught:
        PriceOverrides(**kwargs)
    assert caught.value.field == field


# --------------------------------------------------------------------------- custom tables (on-prem)

TABLE = """
nodeLabel: example.com/node-class
nodeTypes:
  rack-a-large: {hourly: 0.42, vcpu: 32, memoryGiB: 128}
  gpu: {hourly: 2.1, vcpu: 16, memoryGiB: 64}
storage:
  ceph-rbd: {gbMonth: 0.03}
"""


def test_a_custom_table_prices_nodes_by_label_value():
    book = custom_book(parse_table_text(TABLE, source="cm"), source="cm", region="onprem")
    pricing = Pricing(book)
    price = pricing.node_price(node(instance_type="unknown", labels={"example.com/node-class": "rack-a-large"}))
    assert (price.hourly, price.source) == (0.42, PriceSource.USER) and "custom table cm" in price.detail
    assert book.volume_monthly("ceph-rbd", 100) == pytest.approx(3.0) and book.control_plane_hourly == 0.0
    with pytest.raises(ConfigError, match="no price for EBS volume type 'gp3'"):
        book.volume("gp3")


@pytest.mark.parametrize("text, field, words", [
    ("currency: EUR\nnodeTypes: {a: {hourly: 1, vcpu: 1, memoryGiB: 1}}", "currency", "'EUR'"),
    ("nodeTypes: {a: {hourly: -1, vcpu: 1, memoryGiB: 1}}", "nodeTypes.a.hourly", "positive"),
    ("nodeTypes: {a: {hourly: 1, vcpu: 1}}", "nodeTypes.a.memoryGiB", "number"),
    ("nodeTypes: {}", "nodeTypes", "nodeTypes"),
    ("nodeTypes: {a: {hourly: 1, vcpu: 1, memoryGiB: 1}}\nprice: 3", "price", "unknown key"),
])
def test_bad_custom_tables_name_the_field(text, field, words):
    with pytest.raises(ConfigError) as caught:
        custom_book(parse_table_text(text, source="cm"), source="cm")
    assert caught.value.field == field and words in str(caught.value) and caught.value.source == "cm"


def test_a_table_that_is_not_yaml_is_refused():
    with pytest.raises(ConfigError, match="not valid YAML or JSON"):
        parse_table_text("nodeTypes: {a: [", source="cm")


# --------------------------------------------------------------------------- live lookups (fake AWS)


class FakeLive:
    region = "eu-west-1"

    def __init__(self, fail: bool = False):
        self.fail, self.asked = fail, []

    def on_demand(self, types):
        self.asked.append(sorted(types))
        if self.fail:
            raise DataSourceError("throttled by AWS", source="aws pricing")
        return {t: LiveQuote(t, 0.3, 4, 16, "pricing:GetProducts test") for t in types if t != "m5.large"}

    def spot(self, types, zones):
        return SpotQuotes({(t, z): 0.05 for t in types for z in zones if z == "eu-west-1a"}, "spot test")


def test_pricing_prefers_user_then_spot_then_live_then_book():
    live = FakeLive()
    book = apply_overrides(PriceBook.for_region("eu-west-1"), PriceOverrides(instance_prices={"c5.large": 0.05}))
    pricing = Pricing(book, live=live)
    nodes = [node("a", "m5.xlarge"), node("b", "c5.large"), node("c", "m5.large"),
             node("d", "m5.xlarge", capacity="spot"), node("e", "m5.xlarge", zone="eu-west-1b", capacity="spot"),
             node("f", "m5.24xlarge")]
    priced = pricing.book_for(nodes)
    assert live.asked == [["m5.24xlarge", "m5.large", "m5.xlarge"]]       # never the user's type
    got = {n.name: priced.node_price(n.instance_type, n.capacity_type, n.zone) for n in nodes}
    assert {k: p.source for k, p in got.items()} == {"a": PriceSource.LIVE, "b": PriceSource.USER,
                                                     "c": PriceSource.LIST, "d": PriceSource.SPOT,
                                                     "e": PriceSource.LIVE, "f": PriceSource.LIVE}
    assert got["d"].hourly == 0.05 and got["e"].hourly == pytest.approx(0.3 * 0.4)
    assert "no on-demand price for m5.large" in priced.notes[0]


def test_a_failing_live_lookup_is_a_stated_fallback():
    pricing = Pricing(PriceBook.for_region("eu-west-1"), live=FakeLive(fail=True))
    price = pricing.node_price(node())
    assert (price.hourly, price.source) == (pytest.approx(0.214), PriceSource.LIST)
    assert pricing.problems and "live on-demand prices unavailable" in pricing.problems[0]


def test_the_run_prices_by_the_states_region_unless_wired():
    nodes = [node()]
    assert book_for_state(None, "ap-northeast-1", nodes).region == "ap-northeast-1"
    wired = PriceBook.for_region("us-west-2")
    assert book_for_state(wired, "ap-northeast-1", nodes) is wired
    with pytest.raises(ConfigError, match="no bundled price book"):
        book_for_state(None, "me-south-1", nodes)


# --------------------------------------------------------------------------- the policy's spec.pricing


def policy(pricing: dict | None = None, region: str | None = "eu-central-1") -> dict:
    spec = {"mode": "DryRun", "scope": {"namespaces": ["shop"]},
            "dataSources": {"prometheus": {"url": "http://prom:9090"}}}
    if region:
        spec["dataSources"]["aws"] = {"region": region}
    if pricing is not None:
        spec["pricing"] = pricing
    return {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
            "metadata": {"name": "p", "namespace": "finops-system"}, "spec": spec}


def test_spec_pricing_is_read_and_applied_to_the_regions_book():
    spec = read_policy(policy({"instancePrices": {"m5.xlarge": "0.2"}, "discountPercent": 15,
                               "spotDiscountPercent": 70, "configMapRef": {"name": "prices"}, "live": True}),
                       operator_ns="finops-system")
    assert spec.pricing.overrides.instance_prices == {"m5.xlarge": 0.2}
    assert (spec.pricing.overrides.discount_percent, spec.pricing.overrides.spot_discount_percent) == (15, 70)
    assert spec.pricing.table == SecretRef("prices", "prices.yaml") and spec.pricing.live
    book = policy_pricing(spec, "eu-central-1").book
    assert book.region == "eu-central-1" and book.node_price("m5.xlarge").hourly == 0.2
    assert book.node_price("c5.large").hourly == pytest.approx(0.097 * 0.85)


@pytest.mark.parametrize("pricing, field, words", [
    ({"instancePrices": {"m5.xlarge": 0.2}}, "spec.pricing.instancePrices.m5.xlarge", "string"),
    ({"instancePrices": {"m5.xlarge": "cheap"}}, "spec.pricing.instancePrices.m5.xlarge", "decimal string"),
    ({"discountPercent": 120}, "spec.pricing.discountPercent", "99"),
    ({"configMapRef": {"name": "Bad_Name"}}, "spec.pricing.configMapRef.name", "ConfigMap name"),
    ({"currency": "EUR"}, "spec.pricing.currency", "Extra inputs"),
])
def test_bad_spec_pricing_names_the_field(pricing, field, words):
    with pytest.raises(ConfigError) as caught:
        read_policy(policy(pricing), operator_ns="finops-system")
    assert caught.value.field == field, str(caught.value)
    assert words in str(caught.value)


def test_a_policy_in_a_region_without_a_book_says_which_field():
    spec = read_policy(policy(region="sa-east-1"), operator_ns="finops-system")
    with pytest.raises(ConfigError) as caught:
        policy_pricing(spec, "sa-east-1")
    assert caught.value.source == "FinOpsPolicy finops-system/p"
    assert caught.value.field == "spec.dataSources.aws.region" and "spec.pricing.configMapRef" in str(caught.value)


def test_build_deps_reads_the_table_from_its_configmap(tmp_path):
    spec = read_policy(policy({"configMapRef": {"name": "node-prices", "key": "table"}, "discountPercent": 50},
                              region="sa-east-1"), operator_ns="finops-system")
    reads = []

    def config_maps(api_client, namespace, ref, *, where, source):
        reads.append((namespace, ref, where, source))
        return TABLE

    wiring = build_deps(spec, object(), workdir=tmp_path, config_map_reader=config_maps)
    assert reads == [("finops-system", SecretRef("node-prices", "table"), "spec.pricing.configMapRef",
                      "FinOpsPolicy finops-system/p")]
    pricing = wiring.deps.prices
    assert isinstance(pricing, Pricing) and pricing.live is None
    state = ClusterState("c", "sa-east-1", Window(NOW - timedelta(days=1), NOW, 300),
                         nodes=[node(instance_type="x", labels={"example.com/node-class": "gpu"})])
    price = Pricing(book_for_state(pricing, state.region, state.nodes)).node_price(state.nodes[0])
    assert (price.hourly, price.source) == (2.1, PriceSource.USER)      # custom prices are not discounted


def test_the_cli_prices_a_snapshot_by_its_region_with_the_policy_files_pricing(tmp_path):
    from finops_operator.cli.common import load_prices
    assert load_prices(None, "ap-southeast-1").node_hourly("m5.large") == pytest.approx(0.12)
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: finops.dev/v1alpha1\nkind: FinOpsPolicy\nmetadata: {name: p}\n"
                    "spec:\n  pricing: {instancePrices: {m5.large: '0.1'}, discountPercent: 20}\n")
    book = load_prices(path, "ap-southeast-1")
    assert book.node_price("m5.large").hourly == 0.1
    assert book.node_price("c5.large").hourly == pytest.approx(0.098 * 0.8)
    path.write_text("spec:\n  pricing: {configMapRef: {name: prices}}\n")
    with pytest.raises(ConfigError) as caught:
        load_prices(path, "ap-southeast-1")
    assert caught.value.field == "spec.pricing.configMapRef" and "offline" in str(caught.value)
