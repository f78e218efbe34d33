"""The simulated bill: node-hours at the right price (SP, spot, half a window), cluster-wide lines, CE JSON."""
from __future__ import annotations

import copy
import io
import json
import re
from collections import defaultdict

import numpy as np
import pytest
from tests.support.fixtures_simulator import BILLED_SCENARIO
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from finops_operator.errors import ConfigError
from finops_operator.models.costs import CostCategory, PriceSource
from finops_operator.pricing.catalog import PriceBook
from finops_operator.simulator import (SavingsPlan, parse_scenario, simulate, simulate_bill, write_cost_explorer_json,
                                       write_openmetrics)
from finops_operator.simulator.billing import DATA_TRANSFER_PER_GB, NAT_HOURLY
from finops_operator.simulator.cejson import SAVINGS_PLANS_SERVICE

HOURS = 48
CLUSTER_TAG = "kubernetes.io/cluster/bill-eks"


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load()


@pytest.fixture(scope="module")
def bill(billed_simulation, book):
    return simulate_bill(billed_simulation, book)


def node(sim, group: str):
    return next(n for n in sim.state.nodes if n.node_group == group)


def lines_of(bill, resource: str):
    return [line for line in bill.lines if line.resource_id == resource]


def test_window_is_whole_hours(bill):
    assert (bill.end - bill.start).total_seconds() == HOURS * 3600
    assert bill.source == "simulated" and bill.currency == "USD"


def test_instance_ids_are_ec2_shaped_stable_and_seeded(billed_simulation):
    ids = [n.instance_id for n in billed_simulation.state.nodes]
    assert all(re.fullmatch(r"i-[0-9a-f]{17}", i) for i in ids) and len(set(ids)) == len(ids)
    again = simulate(parse_scenario(copy.deepcopy(BILLED_SCENARIO)))
    assert [n.instance_id for n in again.state.nodes] == ids
    other = simulate(parse_scenario(copy.deepcopy(BILLED_SCENARIO) | {"seed": 12}))
    assert not set(n.instance_id for n in other.state.nodes) & set(ids)


def test_each_node_is_billed_its_list_price_for_the_hours_it_existed(billed_simulation, bill, book):
    for n in billed_simulation.state.nodes:
        hours = 24 if n.node_group == "late" else HOURS          # the late node lived half the window
        lines = lines_of(bill, n.instance_id)
        assert {line.category for line in lines} == {CostCategory.NODE}
        assert len({line.start for line in lines}) == hours
        assert sum(line.list_cost for line in lines) == pytest.approx(book.node_hourly(n.instance_type) * hours)
        assert min(line.start for line in lines).timestamp() >= n.created_at.timestamp()


def test_spot_node_is_billed_at_the_spot_price(billed_simulation, bill, book):
    spot = node(billed_simulation, "spot")
    lines = lines_of(bill, spot.instance_id)
    assert {line.pricing for line in lines} == {PriceSource.SPOT}
    assert all(line.usage_type == "SpotUsage:m5.large" for line in lines)
    assert sum(line.cost for line in lines) == pytest.approx(book.node_hourly("m5.large") * 0.35 * HOURS)


def test_savings_plan_covers_half_of_each_hours_on_demand_cost_at_its_discount(billed_simulation, bill, book):
    on_demand = {n.instance_id for n in billed_simulation.state.nodes if n.capacity_type == "on-demand"}
    per_hour: dict = defaultdict(lambda: [0.0, 0.0])           # hour -> [covered list cost, all list cost]
    for line in (x for x in bill.lines if x.resource_id in on_demand):
        assert line.pricing is PriceSource.EFFECTIVE
        per_hour[line.start][1] += line.list_cost
        if line.line_item_type == "SavingsPlanCoveredUsage":
            per_hour[line.start][0] += line.list_cost
            assert line.cost == pytest.approx(line.list_cost * 0.7)
        else:
            assert line.line_item_type == "Usage" and line.cost == pytest.approx(line.list_cost)
    assert len(per_hour) == HOURS
    for covered, total in per_hour.values():
        assert covered == pytest.approx(0.5 * total)
    first, last = per_hour[min(per_hour)][1], per_hour[max(per_hour)][1]
    assert first == pytest.approx(2 * book.node_hourly("m5.xlarge"))        # before the late node came
    assert last == pytest.approx(2 * book.node_hourly("m5.xlarge") + book.node_hourly("c5.xlarge"))
    expected = sum(total for _, total in per_hour.values()) * (1 - 0.5 * 0.3)
    assert sum(x.cost for x in bill.lines if x.resource_id in on_demand) == pytest.approx(expected)


def test_savings_plan_argument_overrides_the_scenario(billed_simulation, book):
    bill = simulate_bill(billed_simulation, book, savings_plan=SavingsPlan(0.0, 0.3))
    nodes = [x for x in bill.lines if x.category is CostCategory.NODE and x.pricing is PriceSource.EFFECTIVE]
    assert nodes and all(x.cost == x.list_cost and x.line_item_type == "Usage" for x in nodes)


def test_node_lines_carry_the_tags_aws_writes(billed_simulation, bill):
    general = node(billed_simulation, "general")
    tags = lines_of(bill, general.instance_id)[0].tags
    assert tags["aws:eks:cluster-name"] == "bill-eks" and tags["eks:nodegroup-name"] == "general"
    assert tags[CLUSTER_TAG] == "owned"


def test_control_plane_load_balancer_and_nat_lines(bill):
    by = defaultdict(list)
    for line in bill.lines:
        by[line.category].append(line)
    control = by[CostCategory.CONTROL_PLANE]
    assert {x.resource_id for x in control} == {"arn:aws:eks:us-east-1:123456789012:cluster/bill-eks"}
    assert len(control) == HOURS and sum(x.cost for x in control) == pytest.approx(0.10 * HOURS)   # EKS standard support
    assert control[0].service == "AmazonEKS" and control[0].usage_type == "USE1-AmazonEKS-Hours:perCluster"
    lbs = by[CostCategory.LOAD_BALANCER]
    assert len({x.resource_id for x in lbs}) == 1 and len(lbs) == HOURS
    assert lbs[0].resource_id.startswith("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/")
    assert lbs[0].tags[CLUSTER_TAG] == "owned" and lbs[0].tags["elbv2.k8s.aws/cluster"] == "bill-eks"
    nats = by[CostCategory.NAT_GATEWAY]
    assert len({x.resource_id for x in nats}) == 1 and re.fullmatch(r"nat-[0-9a-f]{17}", nats[0].resource_id)
    assert all(x.tags[CLUSTER_TAG] == "owned" for x in nats)
    hours_lines = [x for x in nats if x.usage_type == "NatGateway-Hours"]
    assert len(hours_lines) == HOURS and sum(x.cost for x in hours_lines) == pytest.approx(NAT_HOURLY * HOURS)
    assert all(x.cost > 0 for x in nats if x.usage_type == "NatGateway-Bytes")
    other = by[CostCategory.OTHER]
    assert other and all(x.resource_id == "" and x.service == "AWSDataTransfer" for x in other)
    assert sum(x.cost for x in other) == pytest.approx(24 * 2 * DATA_TRANSFER_PER_GB, rel=0.2)   # 24 GB/day


def test_volumes_are_billed_by_the_ids_the_inventory_uses(bill, book):
    volumes = bill.by_resource(CostCategory.VOLUME)
    assert set(volumes) == {"vol-0aaaaaaaaaaaaaaa1", "vol-0bbbbbbbbbbbbbbb2"}
    assert volumes["vol-0aaaaaaaaaaaaaaa1"] == pytest.approx(book.volume_monthly("gp3", 100) / 730 * HOURS)
    assert volumes["vol-0bbbbbbbbbbbbbbb2"] == pytest.approx(book.volume_monthly("gp2", 50) / 730 * HOURS)
    pv = next(x for x in bill.lines if x.resource_id == "vol-0bbbbbbbbbbbbbbb2")
    assert pv.tags["kubernetes.io/created-for/pvc/name"] == "data-0"
    assert any("pvc-nowhere" in p for p in bill.problems)       # no backing volume: said, not silently zero


def test_bill_total_adds_up_from_its_parts(billed_simulation, bill, book):
    parts = bill.by_category()
    assert sum(parts.values()) == pytest.approx(bill.total())
    assert set(parts) == set(CostCategory)


def test_scenario_billing_block_errors_name_the_field():
    for billing, field in (({"savingsPlanCoverage": 1.5}, "billing.savingsPlanCoverage"),
                           ({"spotDiscount": -0.1}, "billing.spotDiscount"),
                           ({"natGateways": "two"}, "billing.natGateways"),
                           ({"accountId": "12345"}, "billing.accountId"),
                           ({"savingsPlan": 0.5}, "billing.savingsPlan")):
        with pytest.raises(ConfigError) as err:
            parse_scenario(copy.deepcopy(BILLED_SCENARIO) | {"billing": billing}, source="s.yaml")
        assert err.value.field == field, billing


def test_cost_explorer_json_is_the_documented_response_shape(tmp_path, bill):
    path = write_cost_explorer_json(bill, tmp_path / "ce.json")
    doc = json.loads(path.read_text())
    assert set(doc) == {"GroupDefinitions", "ResultsByTime", "DimensionValueAttributes"}
    assert doc["GroupDefinitions"] == [{"Type": "DIMENSION", "Key": "SERVICE"}]
    days = doc["ResultsByTime"]
    assert [d["TimePeriod"] for d in days] == [{"Start": "2026-11-18", "End": "2026-11-19"},
                                               {"Start": "2026-11-19", "End": "2026-11-20"}]
    totals = {"AmortizedCost": 0.0, "UnblendedCost": 0.0}
    services = set()
    for day in days:
        assert set(day) == {"TimePeriod", "Total", "Groups", "Estimated"} and day["Estimated"] is False
        for group in day["Groups"]:
            assert set(group) == {"Keys", "Metrics"} and len(group["Keys"]) == 1
            services.add(group["Keys"][0])
            for metric, value in group["Metrics"].items():
                assert set(value) == {"Amount", "Unit"} and value["Unit"] == "USD"
                assert isinstance(value["Amount"], str)
                totals[metric] += float(value["Amount"])
    assert totals["AmortizedCost"] == pytest.approx(bill.total(), abs=1e-6)
    assert totals["UnblendedCost"] == pytest.approx(bill.total(), abs=1e-6)
    assert {"Amazon Elastic Compute Cloud - Compute", "EC2 - Other", "Amazon Elastic Load Balancing",
            "Amazon Elastic Container Service for Kubernetes", "AWS Data Transfer", SAVINGS_PLANS_SERVICE} == services
    compute = [g for d in days for g in d["Groups"] if g["Keys"] == ["Amazon Elastic Compute Cloud - Compute"]]
    assert all(float(g["Metrics"]["UnblendedCost"]["Amount"]) < float(g["Metrics"]["AmortizedCost"]["Amount"])
               for g in compute)                                # covered usage is negated in unblended


def test_openmetrics_node_info_has_the_provider_id_and_lifetimes(billed_simulation):
    out = io.StringIO()
    write_openmetrics(billed_simulation, out)
    families = {f.name: f for f in text_string_to_metric_families(out.getvalue())}
    info = {s.labels["node"]: s for s in families["kube_node_info"].samples}
    for n in billed_simulation.state.nodes:
        assert info[n.name].labels["provider_id"] == f"aws:///{n.zone}/{n.instance_id}"
    late = node(billed_simulation, "late")
    created = late.created_at.timestamp()
    first = {}
    for family in ("kube_node_info", "kube_node_status_allocatable", "container_memory_working_set_bytes",
                   "kube_pod_info"):
        for s in families[family].samples:
            if s.labels.get("node") == late.name or s.labels.get("pod", "").startswith("crunch-"):
                first[family] = min(first.get(family, np.inf), float(s.timestamp))
    assert first and all(t == created for t in first.values()), first
    web = [float(s.timestamp) for s in families["kube_pod_info"].samples if s.labels["pod"].startswith("web-")]
    assert min(web) < created


def test_finops_simulate_writes_the_cost_explorer_json(tmp_path, capsys):
    from finops_operator.cli.main import main
    from finops_operator.snapshot import load_snapshot

    scenario = tmp_path / "s.yaml"
    scenario.write_text(json.dumps(BILLED_SCENARIO))                  # JSON is YAML
    out, ce = tmp_path / "c.npz", tmp_path / "ce.json"
    assert main(["simulate", "--scenario", str(scenario), "--out", str(out), "--cost-explorer", str(ce)]) == 0
    doc = json.loads(ce.read_text())
    amortized = sum(float(g["Metrics"]["AmortizedCost"]["Amount"]) for d in doc["ResultsByTime"] for g in d["Groups"])
    expected = simulate_bill(simulate(parse_scenario(copy.deepcopy(BILLED_SCENARIO))), PriceBook.load()).total()
    assert amortized == pytest.approx(expected, abs=1e-6)
    assert all(n.instance_id for n in load_snapshot(out).state.nodes)
    assert f"wrote {ce}" in capsys.readouterr().out.replace("\n", "")
