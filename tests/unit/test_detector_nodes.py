"""Idle / under-used node detection and consolidation planning."""
from __future__ import annotations

import pytest

from finops_operator.detectors.nodes import IdleNodes, first_fit_decreasing
from finops_operator.models import Change, FindingType, Node, Pod, TargetKind
from finops_operator.pricing.catalog import PriceBook
from tests.support.fixtures_detectors import GIB, StateBuilder, policy

NODE_MONTH = 0.192 * 730   # m5.xlarge on demand


def run(builder, settings=None):
    return IdleNodes(settings or policy(), PriceBook.load()).run(builder.build())


def three_nodes(group: str = "general") -> StateBuilder:
    """n1 busy (2 cores), n2 and n3 at 10%: both fit on n1 below 85%."""
    b = StateBuilder()
    for name in ("n1", "n2", "n3"):
        b.node(name, group=group, cpu=4.0, memory=16 * GIB, labels={"team": "platform"})
    b.pod("busy-1", "n1", 2.0, 6 * GIB, owner="busy")
    b.pod("web-1", "n2", 0.3, 1 * GIB, owner="web", labels={"app": "web"})
    b.pod("web-2", "n3", 0.3, 1 * GIB, owner="web", labels={"app": "web"})
    for name in ("n1", "n2", "n3"):          # DaemonSet pods: counted as room taken, never moved
        b.pod(f"ds-{name}", name, 0.1, 256 * 2**20, owner="node-exporter", daemonset=True)
    return b


def test_two_idle_nodes_consolidate_onto_the_busy_one():
    result = run(three_nodes())
    assert len(result.findings) == 1
    f = result.findings[0]
    assert f.type == FindingType.IDLE_NODE and f.target.kind == TargetKind.NODE_GROUP and f.target.name == "general"
    assert f.changes == [Change("desired_size", "3", "1")]
    assert f.monthly_savings == pytest.approx(2 * NODE_MONTH, abs=0.01)
    assert [n["node"] for n in f.evidence["nodes_removed"]] == ["n2", "n3"]
    moved = {p["pod"]: (p["from"], p["to"]) for p in f.evidence["pods_moved"]}
    assert moved == {"shop/web-1": ("n2", "n1"), "shop/web-2": ("n3", "n1")}     # no DaemonSet pods
    # n1 after: 2.0 + 0.1 (ds) + 0.6 = 2.7 of 4 cores
    assert f.evidence["receivers_after"]["n1"]["cpu_percent"] == 67.5
    assert f.evidence["min_size_at_most"] == 1 and f.labels["team"] == "platform" and f.team == "platform"
    assert f.risk == pytest.approx(0.1 + 0.5 * 0.675)      # n1, the only receiver, ends at 67.5% CPU
    assert f.confidence == pytest.approx(0.9 * 0.8)         # no node usage series: 0.8 coverage assumed


def test_daemonset_pods_do_not_make_a_node_look_busy():
    b = three_nodes()
    b.pod("ds-big", "n2", 2.5, 10 * GIB, owner="logging", daemonset=True)
    f = run(b).findings[0]
    assert "n2" in [n["node"] for n in f.evidence["nodes_removed"]]


def test_busy_nodes_are_not_candidates():
    b = three_nodes()
    b.pod("heavy-2", "n2", 1.8, 2 * GIB, owner="heavy")      # n2 at 52% CPU requested
    f = run(b).findings[0]
    assert [n["node"] for n in f.evidence["nodes_removed"]] == ["n3"] and f.changes[0].after == "2"


def test_pods_that_do_not_fit_block_the_move():
    b = StateBuilder()
    b.node("n1", cpu=4.0, memory=16 * GIB).node("n2", cpu=4.0, memory=16 * GIB)
    b.pod("big", "n1", 3.2, 4 * GIB, owner="big")     # n1 is full at 85%: 3.4 cores
    b.pod("small", "n2", 1.2, 1 * GIB, owner="small")
    result = run(b)
    assert not result.findings
    assert any("do not fit" in s.reason and s.target == "node/n2" for s in result.skipped)


def test_memory_also_has_to_fit():
    b = StateBuilder()
    b.node("n1", cpu=4.0, memory=16 * GIB).node("n2", cpu=4.0, memory=16 * GIB)
    b.pod("cache", "n1", 0.5, 13 * GIB, owner="cache")
    b.pod("small", "n2", 0.2, 1 * GIB, owner="small")
    assert not run(b).findings                       # 13 + 1 GiB > 85% of 16 GiB
    assert run(b, policy(nodes={"maxFillPercent": 95})).findings


@pytest.mark.parametrize("mutate,needle", [
    (lambda b: b.pdb("web", {"app": "web"}, allowed=0), "PodDisruptionBudget shop/web"),
    (lambda b: b.pod("pinned", "n2", 0.1, GIB, owner="p", annotations={"karpenter.sh/do-not-disrupt": "true"}),
     "karpenter.sh/do-not-disrupt"),
    (lambda b: b.pod("local", "n2", 0.1, GIB, owner="p",
                     annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}), "safe-to-evict"),
    (lambda b: b.pod("bare", "n2", 0.1, GIB, owner=None), "no controller"),
])
def test_blocked_nodes_are_skipped_with_the_reason(mutate, needle):
    b = three_nodes()
    mutate(b)
    result = run(b)
    reasons = {s.target: s.reason for s in result.skipped}
    assert needle in reasons["node/n2"]
    if "PodDisruptionBudget" in needle:          # the PDB selects web-1 on n2 and web-2 on n3
        assert not result.findings and needle in reasons["node/n3"]
    else:
        assert [n["node"] for n in result.findings[0].evidence["nodes_removed"]] == ["n3"]


def test_pdb_with_disruptions_left_or_other_labels_does_not_block():
    b = three_nodes()
    b.pdb("web", {"app": "web"}, allowed=1).pdb("db", {"app": "db"}, allowed=0)
    b.pdb("other-ns", {"app": "web"}, allowed=0, namespace="elsewhere")
    assert run(b).findings[0].changes[0].after == "1"


def test_node_annotation_and_young_node_block():
    b = StateBuilder()
    b.node("n1", cpu=4.0, memory=16 * GIB)
    b.node("n2", cpu=4.0, memory=16 * GIB, annotations={"karpenter.sh/do-not-disrupt": "true"})
    b.node("n3", cpu=4.0, memory=16 * GIB, age_hours=3)
    b.pod("busy", "n1", 2.0, 4 * GIB)
    result = run(b)
    reasons = {s.target: s.reason for s in result.skipped}
    assert not result.findings
    assert "do-not-disrupt" in reasons["node/n2"] and "3.0h old" in reasons["node/n3"]


def test_groups_are_planned_separately_and_last_node_stays():
    b = three_nodes("general")
    b.node("gpu-1", group="gpu", instance_type="m5.2xlarge", cpu=8.0, memory=32 * GIB)
    b.pod("train", "gpu-1", 0.2, GIB, owner="train")
    result = run(b)
    assert [f.target.name for f in result.findings] == ["general"]
    assert any(s.target == "node/gpu-1" and "last node" in s.reason for s in result.skipped)
    assert all(p["to"] in {"n1"} for p in result.findings[0].evidence["pods_moved"])


def test_nodes_without_group_are_reported_not_resized():
    b = StateBuilder()
    b.node("k1", group=None).node("k2", group=None)
    result = run(b)
    assert not result.findings and len(result.skipped) == 2 and "no node group" in result.skipped[0].reason


def test_cordoned_nodes_do_not_receive_pods():
    b = StateBuilder()
    b.node("n1", cpu=4.0, memory=16 * GIB, unschedulable=True).node("n2", cpu=4.0, memory=16 * GIB)
    b.pod("a", "n1", 0.2, GIB).pod("b", "n2", 0.2, GIB)
    result = run(b)
    # n2 cannot move onto cordoned n1; n1 (cordoned) can move onto n2
    assert result.findings[0].evidence["nodes_removed"][0]["node"] == "n1"


def test_spot_nodes_are_priced_at_the_discount_and_unknown_types_are_skipped():
    b = StateBuilder()
    b.node("s1", group="spot", capacity_type="spot").node("s2", group="spot", capacity_type="spot")
    b.node("x1", group="exotic", instance_type="z9.huge").node("x2", group="exotic", instance_type="z9.huge")
    result = run(b)
    (f,) = result.findings
    assert f.target.name == "spot" and f.monthly_savings == pytest.approx(NODE_MONTH * 0.4, abs=0.01)
    assert any(s.target == "node-group/exotic" and "z9.huge" in s.reason for s in result.skipped)


def test_finished_pods_are_ignored():
    b = three_nodes()
    b.pod("job-done", "n2", 3.0, 8 * GIB, owner="job", phase="Succeeded")
    assert run(b).findings[0].changes[0].after == "1"


def test_first_fit_decreasing_places_largest_first():
    nodes = [Node("a", "m5.xlarge", "g", 4.0, 16 * GIB), Node("b", "m5.xlarge", "g", 4.0, 16 * GIB)]
    from finops_operator.detectors.nodes import _Load
    loads = {"a": _Load(), "b": _Load()}
    pods = [Pod("ns", "p1", "x", None, 1.0, GIB), Pod("ns", "p2", "x", None, 3.0, GIB),
            Pod("ns", "p3", "x", None, 2.5, GIB)]
    assert first_fit_decreasing(pods, nodes, loads, 1.0) == {"ns/p2": "a", "ns/p3": "b", "ns/p1": "a"}
    assert first_fit_decreasing(pods, nodes, loads, 0.7) is None


def test_fast_with_many_nodes_and_pods():
    import time
    b = StateBuilder()
    for g in range(10):
        for i in range(50):
            b.node(f"g{g}-n{i}", group=f"g{g}", cpu=8.0, memory=32 * GIB)
            for p in range(20):
                b.pod(f"p-{g}-{i}-{p}", f"g{g}-n{i}", 0.05 if i % 3 else 0.3, GIB // 4, owner=f"w{p}")
    started = time.perf_counter()
    result = run(b)
    assert time.perf_counter() - started < 10 and result.findings


def test_node_group_min_size_is_respected():
    from finops_operator.models import NodeGroup
    state = three_nodes().build()
    state.node_groups = [NodeGroup("general", min_size=2, max_size=5, desired_size=3)]
    result = IdleNodes(policy(), PriceBook.load()).run(state)
    [f] = result.findings
    assert f.changes == [Change("desired_size", "3", "2")]          # two idle nodes, but min_size 2
    assert any("at its min_size 2" in s.reason for s in result.skipped)
    state.node_groups = [NodeGroup("general", min_size=3)]
    result = IdleNodes(policy(), PriceBook.load()).run(state)
    assert result.findings == [] and any("min_size 3" in s.reason for s in result.skipped)
