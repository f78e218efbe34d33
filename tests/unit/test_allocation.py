"""Allocation: the split adds up to the node price, charges add up to the bill, the residual is reported.

Simulated clusters (tests/unit/alloc_cluster.py) hold on-demand, Savings Plans-covered and
spot nodes, a node that lived half the window, a node billed in daily lines, containers that
stop some hours, over-ask their node or run on unknown nodes, billed and unbilled claims, an
unattached volume, cluster-wide costs and a bill line matching nothing.
"""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from finops_operator.allocation import AllocationSettings, allocate, effective_rates
from finops_operator.allocation.containers import container_costs
from finops_operator.allocation.nodecost import node_costs
from finops_operator.errors import ConfigError
from finops_operator.models.costs import Bill, ChargeKind, CostCategory, PriceSource, UsageHours
from finops_operator.settings import load_policy

from .alloc_cluster import BOOK, SP_RATE, SPOT_RATE, simulated

POLICIES = st.builds(AllocationSettings, idle=st.sampled_from(["Report", "Share"]),
                     shared=st.sampled_from(["Report", "Even", "ByCPU", "ByCost"]))


def by_kind(allocation, kind):
    return sum(c.cost for c in allocation.charges if c.kind is kind)


# ------------------------------------------------------------------------------------------- the split


def test_split_of_every_node_hour_adds_up_to_its_cost():
    c = simulated(1)
    nodes = node_costs(c.usage, c.prices, c.book)
    rebuilt = nodes.cpu_rate * nodes.cores[:, None] + nodes.mem_rate * nodes.gib[:, None]
    np.testing.assert_allclose(rebuilt, nodes.cost, rtol=1e-12)
    # without a bill the cost is the node price in the hours it was present, nothing when absent
    hourly = np.array([c.prices[n.name].hourly for n in c.usage.nodes])
    np.testing.assert_allclose(nodes.cost, hourly[:, None] * c.usage.node_present, rtol=1e-12)


def test_bill_lines_land_on_their_node_hours():
    c = simulated(2)
    nodes = node_costs(c.usage, c.prices, c.book, c.bill)
    listed = np.array([BOOK.instances[n.instance_type].hourly for n in c.usage.nodes])
    np.testing.assert_allclose(nodes.cost[1], SP_RATE * listed[1])            # SP-covered, every hour
    np.testing.assert_allclose(nodes.cost[2], SPOT_RATE * listed[2])          # spot
    half = c.usage.node_present[3]
    np.testing.assert_allclose(nodes.cost[3][half], listed[3])                # lived the second half
    assert (nodes.cost[3][~half] == 0).all()
    np.testing.assert_allclose(nodes.cost[4], listed[4])                      # daily lines, spread
    assert nodes.sources[PriceSource.SPOT] == pytest.approx(SPOT_RATE * listed[2] * 48)


# ------------------------------------------------------------------------------ sums to the bill


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), policy=POLICIES, unknown=st.integers(0, 8), overcommit=st.booleans())
def test_allocation_adds_up_to_the_bill(seed, policy, unknown, overcommit):
    c = simulated(seed, unknown=unknown, overcommit=overcommit)
    a = allocate(c.usage, c.prices, c.book, bill=c.bill, settings=policy)
    assert a.bill_total == pytest.approx(c.bill.total())
    assert a.residual == pytest.approx(0.0, abs=1e-9 * a.bill_total)      # nothing dropped: exactly the bill
    assert all(ch.cost >= -1e-12 for ch in a.charges)
    assert by_kind(a, ChargeKind.UNALLOCATED) == pytest.approx(c.bill.total(CostCategory.OTHER)
                                                                + 30 * BOOK.volumes["gp3"].gb_month / 730 * 48)
    if policy.idle.value == "Share":
        assert not [ch for ch in a.charges if ch.kind is ChargeKind.IDLE]
    if policy.shared.value == "Report":
        assert by_kind(a, ChargeKind.SHARED) == pytest.approx(sum(
            c.bill.total(cat) for cat in CostCategory if cat.shared))
    else:
        assert not [ch for ch in a.charges if ch.kind is ChargeKind.SHARED]


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), unknown=st.integers(0, 8), overcommit=st.booleans())
def test_no_node_is_charged_more_than_it_costs(seed, unknown, overcommit):
    c = simulated(seed, unknown=unknown, overcommit=overcommit)
    nodes = node_costs(c.usage, c.prices, c.book, c.bill)
    a = allocate(c.usage, c.prices, c.book, bill=c.bill)
    for i, node in enumerate(c.usage.nodes):
        on_node = sum(ch.cost for ch in a.charges if ch.node == node.name)         # its containers + its idle
        assert on_node == pytest.approx(nodes.cost[i].sum(), rel=1e-9) or on_node < nodes.cost[i].sum()
        assert on_node <= nodes.cost[i].sum() * (1 + 1e-9)
    if overcommit:
        assert any("scaled down" in n for n in a.notes)


def test_residual_is_reported_when_the_bill_lacks_something():
    c = simulated(3, unbilled_claim=True)
    dropped = c.usage.nodes[0].instance_id
    bill = Bill(c.bill.source, c.bill.start, c.bill.end, [ln for ln in c.bill.lines if ln.resource_id != dropped])
    a = allocate(c.usage, c.prices, c.book, bill=bill)
    node0 = c.prices["node-0"].hourly * 48
    claim = 20 * BOOK.volumes["gp3"].gb_month / 730 * 48
    assert a.residual == pytest.approx(-(node0 + claim))
    assert abs(a.residual) / a.bill_total > 0.01                              # large enough to matter: shown
    assert any("node-0 (48 h)" in n for n in a.notes)
    assert any("do not name" in n or "does not name" in n for n in a.notes)


def test_bill_outside_the_window_is_unallocated_not_dropped():
    c = simulated(4)
    hours = c.usage.hours[:24]                                                # usage covers day one only
    u = c.usage
    short = UsageHours(hours, u.nodes, u.node_present[:, :24], u.containers, u.node_of, u.cpu_request[:, :24],
                       u.cpu_usage[:, :24], u.memory_request[:, :24], u.memory_usage[:, :24], u.claims)
    a = allocate(short, c.prices, c.book, bill=c.bill)
    assert a.residual == pytest.approx(0.0, abs=1e-9)
    assert by_kind(a, ChargeKind.UNALLOCATED) > c.bill.total() / 3
    assert any("outside the usage window" in n for n in a.notes)


def test_cost_explorer_node_totals_scale_the_priced_nodes():
    c = simulated(5)
    day = timedelta(hours=24)
    nodes_total = c.bill.total(CostCategory.NODE)
    rest = [ln for ln in c.bill.lines if ln.category is not CostCategory.NODE]
    daily = [dataclasses.replace(rest[0], start=c.bill.start + d * day, end=c.bill.start + (d + 1) * day,
                                 resource_id="", category=CostCategory.NODE, service="AmazonEC2",
                                 cost=nodes_total / 2, list_cost=nodes_total / 2) for d in range(2)]
    a = allocate(c.usage, c.prices, c.book, bill=Bill("cost-explorer", c.bill.start, c.bill.end, rest + daily))
    assert a.residual == pytest.approx(0.0, abs=1e-9)
    assert sum(a.price_sources.values()) == pytest.approx(nodes_total)
    assert a.price_sources == {PriceSource.EFFECTIVE: pytest.approx(nodes_total)}


# ------------------------------------------------------------------------------------ no bill


def test_without_a_bill_costs_come_from_prices():
    c = simulated(6)
    a = allocate(c.usage, c.prices, c.book, shared_hourly={CostCategory.CONTROL_PLANE: 0.10})
    assert a.bill_total is None and a.residual == 0.0
    node_total = sum(c.prices[n.name].hourly * c.usage.node_present[i].sum() for i, n in enumerate(c.usage.nodes))
    assert a.price_sources == {PriceSource.LIST: pytest.approx(node_total)}
    allocated = sum(ch.cost for ch in a.charges if ch.kind in (ChargeKind.CONTAINER, ChargeKind.IDLE))
    assert allocated == pytest.approx(node_total)
    assert by_kind(a, ChargeKind.SHARED) == pytest.approx(0.10 * 48)


def test_a_node_without_any_price_is_priced_by_capacity_and_noted():
    c = simulated(7)
    node = dataclasses.replace(c.usage.nodes[0], instance_type="x9.huge")
    u = c.usage
    usage = UsageHours(u.hours, [node, *u.nodes[1:]], u.node_present, u.containers, u.node_of, u.cpu_request,
                       u.cpu_usage, u.memory_request, u.memory_usage, u.claims)
    prices = {k: v for k, v in c.prices.items() if k != "node-0"}
    a = allocate(usage, prices, c.book)
    assert any("x9.huge" in n and "no price" in n for n in a.notes)
    assert sum(ch.cost for ch in a.charges if ch.node == "node-0") > 0


# ------------------------------------------------------------------------------- idle and shared


def test_idle_shared_out_equals_idle_reported():
    c = simulated(8)
    report = allocate(c.usage, c.prices, c.book, bill=c.bill)
    share = allocate(c.usage, c.prices, c.book, bill=c.bill, settings=AllocationSettings(idle="Share"))
    idle = by_kind(report, ChargeKind.IDLE)
    assert idle > 0
    assert sum(ch.idle_cost for ch in share.charges) == pytest.approx(idle)
    cost = {(ch.namespace, ch.container, ch.workload, ch.node, ch.cpu_cost): ch for ch in report.charges}
    for ch in share.charges:
        if ch.kind is ChargeKind.CONTAINER and ch.cpu_cost + ch.memory_cost > 0:
            ratio = ch.idle_cost / (ch.cpu_cost + ch.memory_cost)
            assert ratio == pytest.approx(idle / sum(x.cpu_cost + x.memory_cost for x in share.charges
                                                     if x.kind is ChargeKind.CONTAINER))
    assert cost  # the report has container rows too


def test_even_shares_the_same_amount_per_namespace():
    c = simulated(9)
    a = allocate(c.usage, c.prices, c.book, bill=c.bill, settings=AllocationSettings(shared="Even"))
    per_ns: dict[str, float] = {}
    for ch in a.charges:
        per_ns[ch.namespace] = per_ns.get(ch.namespace, 0.0) + ch.shared_cost
    shared = sum(c.bill.total(cat) for cat in CostCategory if cat.shared)
    assert sorted(per_ns) == ["", "ns-0", "ns-1", "ns-2", "ns-3"]
    assert per_ns[""] == 0
    for ns in ("ns-0", "ns-1", "ns-2", "ns-3"):
        assert per_ns[ns] == pytest.approx(shared / 4)


def test_by_cpu_follows_cpu_cost():
    c = simulated(10)
    a = allocate(c.usage, c.prices, c.book, bill=c.bill, settings=AllocationSettings(shared="ByCPU"))
    rows = [ch for ch in a.charges if ch.kind is ChargeKind.CONTAINER and ch.cpu_cost > 0]
    ratios = {round(ch.shared_cost / ch.cpu_cost, 9) for ch in rows}
    assert len(ratios) == 1


# ------------------------------------------------------------------------- containers and claims


def test_container_charged_max_of_request_and_usage_at_its_node_rate():
    c = simulated(11)
    u = c.usage
    nodes = node_costs(u, c.prices, c.book, c.bill)
    rows = container_costs(u, nodes)
    r = int(np.nonzero(u.node_of == 1)[0][0])
    cpu = np.nan_to_num(np.fmax(u.cpu_request[r], u.cpu_usage[r]))
    assert rows.cpu[r] == pytest.approx((cpu * nodes.cpu_rate[1]).sum())
    mem = np.nan_to_num(np.fmax(u.memory_request[r], u.memory_usage[r])) / 2**30
    assert rows.memory[r] == pytest.approx((mem * nodes.mem_rate[1]).sum())


def test_claims_are_charged_their_volume_bill_or_price():
    c = simulated(12, unbilled_claim=True)
    a = allocate(c.usage, c.prices, c.book, bill=c.bill)
    vols = {ch.resource: ch for ch in a.charges if ch.kind is ChargeKind.VOLUME}
    gp3 = BOOK.volumes["gp3"].gb_month / 730
    assert vols["vol-0000000000000001"].cost == pytest.approx(100 * gp3 * 48)
    assert vols["vol-0000000000000001"].namespace == "ns-0"
    assert vols["vol-0000000000000001"].price_source is PriceSource.EFFECTIVE
    assert vols["vol-unbilled"].price_source is PriceSource.LIST
    unattached = [ch for ch in a.charges if ch.resource == "vol-unattached"]
    assert unattached[0].kind is ChargeKind.UNALLOCATED and unattached[0].service == "AmazonEC2"


def test_unknown_node_containers_are_charged_and_noted():
    c = simulated(13, unknown=5)
    a = allocate(c.usage, c.prices, c.book, bill=c.bill)
    unknown = [ch for ch in a.charges if ch.kind is ChargeKind.CONTAINER and ch.node == ""]
    assert len(unknown) == 5 and all(ch.cost > 0 for ch in unknown)
    assert any("blended" in n for n in a.notes)
    assert a.residual == pytest.approx(0.0, abs=1e-9)


# ---------------------------------------------------------------------------------- determinism


def test_same_input_same_allocation_whatever_the_row_order():
    c = simulated(14, unknown=2)
    policy = AllocationSettings(idle="Share", shared="Even")
    first = allocate(c.usage, c.prices, c.book, bill=c.bill, settings=policy)
    again = allocate(c.usage, c.prices, c.book, bill=c.bill, settings=policy)
    assert first.charges == again.charges and first.notes == again.notes
    u = c.usage
    order = np.random.default_rng(0).permutation(len(u.containers))
    shuffled = UsageHours(u.hours, u.nodes, u.node_present, [u.containers[i] for i in order], u.node_of[order],
                          u.cpu_request[order], u.cpu_usage[order], u.memory_request[order],
                          u.memory_usage[order], u.claims)
    third = allocate(shuffled, c.prices, c.book, bill=c.bill, settings=policy)

    def key(ch):
        return ch.kind.value, ch.namespace, ch.workload, ch.container, ch.node, ch.resource, round(ch.cost, 9)
    assert sorted(map(key, first.charges)) == sorted(map(key, third.charges))


# ---------------------------------------------------------------------------------- rates, groups


def test_effective_rates_follow_the_bill():
    c = simulated(15)
    listed = effective_rates(c.usage, c.prices, c.book)
    billed = effective_rates(c.usage, c.prices, c.book, c.bill)
    assert listed.basis == "prices" and billed.basis == "bill"
    assert billed.cpu_core_hour < listed.cpu_core_hour            # SP and spot pay less than list
    nodes = node_costs(c.usage, c.prices, c.book, c.bill)
    core_hours = (nodes.cores[:, None] * (nodes.cost > 0)).sum()
    gib_hours = (nodes.gib[:, None] * (nodes.cost > 0)).sum()
    assert billed.cpu_core_hour * core_hours + billed.memory_gib_hour * gib_hours == pytest.approx(nodes.cost.sum())


def _totals(a, by: str) -> dict[tuple[str, str], float]:
    return {key: sum(c.cost for c in charges) for key, charges in a.grouped(by).items()}


def test_groupings_add_up_and_keep_idle_and_shared_rows():
    c = simulated(16, unknown=1, unbilled_claim=True)
    a = allocate(c.usage, c.prices, c.book, bill=c.bill)
    for by in ("namespace", "team", "workload", "node", "label:tier", "category", "service"):
        assert sum(_totals(a, by).values()) == pytest.approx(a.total), by
    ns = _totals(a, "namespace")
    assert {("idle", ""), ("shared", ""), ("unallocated", ""), ("allocated", "ns-0")} <= set(ns)
    assert {("allocated", f"team-{i}") for i in range(3)} <= set(_totals(a, "team"))
    assert {("allocated", "web"), ("allocated", "batch")} <= set(_totals(a, "label:tier"))
    assert ("idle", "node-0") in _totals(a, "node")
    with pytest.raises(ValueError, match="unknown grouping 'colour'"):
        a.grouped("colour")


def test_team_label_comes_from_the_settings():
    c = simulated(17)
    a = allocate(c.usage, c.prices, c.book, settings=AllocationSettings(team_label="tier"))
    assert {("allocated", "web"), ("allocated", "batch")} <= set(_totals(a, "team"))


def test_policy_spec_allocation_block():
    policy = load_policy({"allocation": {"idle": "Share", "shared": "ByCost", "teamLabel": "owner"}})
    assert policy.allocation == AllocationSettings(idle="Share", shared="ByCost", team_label="owner")
    assert load_policy({}).allocation == AllocationSettings()
    with pytest.raises(ConfigError) as err:
        load_policy({"allocation": {"shared": "Evenly"}})
    assert err.value.field == "allocation.shared"


def test_an_empty_cluster_still_accounts_for_the_whole_bill():
    c = simulated(18)
    h = len(c.usage.hours)
    empty = UsageHours(c.usage.hours, [], np.zeros((0, h), bool), [], np.zeros(0, np.int32),
                       *(np.zeros((0, h)),) * 4)
    a = allocate(empty, {}, c.book, bill=c.bill, settings=AllocationSettings(idle="Share", shared="ByCost"))
    assert a.residual == pytest.approx(0.0, abs=1e-9)
    assert by_kind(a, ChargeKind.SHARED) == pytest.approx(sum(c.bill.total(cat) for cat in CostCategory if cat.shared))
    assert any("not shared out" in n for n in a.notes)
