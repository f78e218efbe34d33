"""The bundled price book, the CPU/GiB split and the money helpers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from finops_operator.errors import ConfigError
from finops_operator.pricing import (HOURS_PER_MONTH, PriceBook, cluster_rates, container_monthly_cost,
                                     cpu_request_savings, default_rates, memory_request_savings, monthly,
                                     split_price)
from tests.support.fixtures_detectors import GIB, StateBuilder

BUNDLED = Path(__file__).resolve().parents[2] / "operator/finops_operator/data/prices-aws-us-east-1.json"


def test_bundled_table_is_dated_and_says_where_figures_come_from(price_book):
    assert price_book.region == "us-east-1"
    assert "AWS" in price_book.source and "list price" in price_book.source.lower()
    assert price_book.retrieved[:4].isdigit()
    raw = json.loads(BUNDLED.read_text())
    assert "checked" in raw["note"] and raw["spot"]["note"] and raw["allocation"]["method"]


@pytest.mark.parametrize("family", ["m5", "m6i", "m7i", "c5", "c6i", "r5", "r6i", "t3",
                                    "m6g", "m7g", "c6g", "r6g"])
def test_common_families_large_to_4xlarge(price_book, family):
    # t3 stops at 2xlarge (AWS sells no t3.4xlarge)
    sizes = ["medium", "large", "xlarge", "2xlarge"] if family == "t3" else ["large", "xlarge", "2xlarge", "4xlarge"]
    prices = [price_book.node_hourly(f"{family}.{s}") for s in sizes]
    assert prices == sorted(prices) and prices[0] > 0
    if family != "t3":
        specs = [price_book.instance(f"{family}.{s}") for s in sizes]
        assert [s.vcpu for s in specs] == [2, 4, 8, 16]


@pytest.mark.parametrize("itype,hourly,vcpu,gib", [
    ("m5.large", 0.096, 2, 8), ("m5.xlarge", 0.192, 4, 16), ("c5.xlarge", 0.17, 4, 8),
    ("r5.large", 0.126, 2, 16), ("m6g.large", 0.077, 2, 8), ("t3.medium", 0.0416, 2, 4),
])
def test_known_list_prices(price_book, itype, hourly, vcpu, gib):
    spec = price_book.instance(itype)
    assert (spec.hourly, spec.vcpu, spec.memory_gib) == (hourly, vcpu, gib)


def test_graviton_is_cheaper_than_its_x86_sibling(price_book):
    for x86, arm in [("m5", "m6g"), ("c5", "c6g"), ("r5", "r6g")]:
        assert price_book.node_hourly(f"{arm}.xlarge") < price_book.node_hourly(f"{x86}.xlarge")
        assert price_book.instance(f"{arm}.xlarge").arch == "arm64"


def test_unknown_instance_type_is_a_clear_error(price_book):
    with pytest.raises(ConfigError) as err:
        price_book.node_hourly("m5.huge")
    text = str(err.value)
    assert "'m5.huge'" in text and "us-east-1" in text and "m5.xlarge" in text and "instances" in text


def test_spot_discount(price_book):
    assert price_book.node_hourly("m5.xlarge", "spot") == pytest.approx(0.192 * (1 - 0.6))
    assert PriceBook.load(spot_discount=0.7).node_hourly("m5.xlarge", "spot") == pytest.approx(0.192 * 0.3)
    with pytest.raises(ConfigError, match="spot.discount"):
        PriceBook.load(spot_discount=1.5)


def test_ebs_prices(price_book):
    assert price_book.volume_monthly("gp2", 100) == pytest.approx(10.0)
    assert price_book.volume_monthly("gp3", 100) == pytest.approx(8.0)
    assert price_book.volume_monthly("gp3", 100, iops=3000, throughput=125) == pytest.approx(8.0)
    assert price_book.volume_monthly("io2", 10, iops=70000) == pytest.approx(
        1.25 + 32000 * 0.065 + 32000 * 0.0455 + 6000 * 0.032)
    assert price_book.snapshot_monthly(100) == pytest.approx(5.0)
    with pytest.raises(ConfigError, match="'gp9'"):
        price_book.volume_monthly("gp9", 1)


def test_split_adds_up_to_the_node_price_in_the_reference_ratio(price_book):
    cpu, mem = split_price(0.192, 4, 16, price_book)
    assert 4 * cpu + 16 * mem == pytest.approx(0.192)
    assert cpu / mem == pytest.approx(0.031611 / 0.004237)
    # hand-computed: a = 0.192 / (4 x 0.031611 + 16 x 0.004237) = 0.98849...
    assert cpu == pytest.approx(0.031247, abs=1e-6) and mem == pytest.approx(0.0041882, abs=1e-6)
    with pytest.raises(ConfigError):
        split_price(0.1, 0, 4, price_book)


def test_cluster_rates_are_an_allocatable_weighted_blend(price_book):
    b = StateBuilder()
    b.node("a", instance_type="m5.xlarge", cpu=4.0, memory=16 * GIB)
    b.node("b", instance_type="c5.2xlarge", cpu=8.0, memory=16 * GIB)
    b.node("weird", instance_type="q1.nano")
    rates = cluster_rates(b.build(), price_book)
    ca, ma = split_price(0.192, 4, 16, price_book)
    cb, mb = split_price(0.34, 8, 16, price_book)
    assert rates.cpu_core_hour == pytest.approx((4 * ca + 8 * cb) / 12)
    assert rates.memory_gib_hour == pytest.approx((16 * ma + 16 * mb) / 32)
    assert rates.nodes_priced == 2 and rates.unpriced == ["weird (q1.nano)"] and rates.basis == "cluster"


def test_spot_nodes_lower_the_rates(price_book):
    on = StateBuilder().node("a", cpu=4.0, memory=16 * GIB).build()
    spot = StateBuilder().node("a", cpu=4.0, memory=16 * GIB, capacity_type="spot").build()
    assert cluster_rates(spot, price_book).cpu_core_hour == pytest.approx(
        cluster_rates(on, price_book).cpu_core_hour * 0.4)


def test_no_priced_nodes_fall_back_to_the_default_type(price_book):
    rates = cluster_rates(StateBuilder().build(), price_book)
    assert rates.basis == "default:m5.xlarge" and rates == default_rates(price_book)
    assert 4 * rates.cpu_core_hour + 16 * rates.memory_gib_hour == pytest.approx(0.192)


def test_money_helpers(price_book):
    rates = default_rates(price_book)
    assert HOURS_PER_MONTH == 730 and monthly(1.0) == 730
    # max(request, usage): usage above the request is what it costs
    cost = container_monthly_cost(0.5, 0.8, 1 * GIB, 0.5 * GIB, rates, replicas=2)
    assert cost == pytest.approx((0.8 * rates.cpu_core_hour + 1 * rates.memory_gib_hour) * 730 * 2)
    assert container_monthly_cost(None, 0.2, None, GIB, rates) == pytest.approx(
        (0.2 * rates.cpu_core_hour + rates.memory_gib_hour) * 730)
    assert cpu_request_savings(1.0, 0.25, rates, 4) == pytest.approx(0.75 * rates.cpu_core_hour * 730 * 4)
    assert memory_request_savings(GIB, 2 * GIB, rates) < 0


def test_custom_table_and_bad_tables(tmp_path):
    good = json.loads(BUNDLED.read_text())
    good["instances"] = {"m5.xlarge": {"vcpu": 4, "memoryGiB": 16, "hourly": 0.2}}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(good))
    assert PriceBook.load(path).node_hourly("m5.xlarge") == 0.2

    good["instances"]["m5.xlarge"]["hourly"] = "cheap"
    path.write_text(json.dumps(good))
    with pytest.raises(ConfigError) as err:
        PriceBook.load(path)
    assert str(path) in str(err.value) and "instances.m5.xlarge.hourly" in str(err.value)

    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        PriceBook.load(path)
    with pytest.raises(ConfigError, match="cannot read"):
        PriceBook.load(tmp_path / "missing.json")
    del good["instances"]
    path.write_text(json.dumps(good))
    with pytest.raises(ConfigError, match="'instances'"):
        PriceBook.load(path)
