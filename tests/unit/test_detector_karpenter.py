"""Karpenter NodePools whose disruption policy keeps under-used nodes (detectors/karpenter.py)."""
from __future__ import annotations

import math

import pytest

from finops_operator.detectors.karpenter import (AFTER_FIELD, POLICY_FIELD, NodePoolConsolidation, after_seconds,
                                                 go_duration)
from finops_operator.detectors.nodes import IdleNodes
from finops_operator.errors import ConfigError
from finops_operator.ledger import Ledger
from finops_operator.models import (Change, ConsolidationPolicy, DisruptionBudget, EditKind, FindingType, NodePool,
                                    TargetKind)
from finops_operator.pricing.allocation import Rates
from finops_operator.pricing.catalog import PriceBook
from tests.support.fixtures_detectors import END, GIB, StateBuilder, policy

NODE_MONTH = 0.192 * 730   # m5.xlarge on demand
WHEN_EMPTY = ConsolidationPolicy.WHEN_EMPTY
UNDERUTILIZED = ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED


def pool_state(pool: NodePool | None = None, *, pool_name: str = "general") -> StateBuilder:
    """Three Karpenter nodes of ``pool_name``: k1 busy, k2 and k3 at ~10% (both fit on k1)."""
    b = StateBuilder()
    for name in ("k1", "k2", "k3"):
        b.node(name, group=pool_name, cpu=4.0, memory=16 * GIB,
               labels={"karpenter.sh/nodepool": pool_name, "team": "platform"})
    b.pod("busy-1", "k1", 2.0, 6 * GIB, owner="busy")
    b.pod("web-1", "k2", 0.3, 1 * GIB, owner="web", labels={"app": "web"})
    b.pod("web-2", "k3", 0.3, 1 * GIB, owner="web", labels={"app": "web"})
    if pool is not None:
        b.state.node_pools.append(pool)
    return b


def run(builder: StateBuilder, settings=None):
    return NodePoolConsolidation(settings or policy(), PriceBook.load()).run(builder.build())


def skips(result) -> dict[str, str]:
    return {s.target: s.reason for s in result.skipped}


def test_when_empty_with_a_long_wait_proposes_the_policy_that_consolidates():
    result = run(pool_state(NodePool("general", WHEN_EMPTY, "30m", {"cpu": "400"}, [DisruptionBudget("10%")])))
    (f,) = result.findings
    assert f.type == FindingType.NODEPOOL_CONSOLIDATION and f.detector == "nodepool-consolidation"
    assert f.target.kind == TargetKind.NODE_POOL and f.target.name == "general" and str(f.target) == "node-pool/general"
    assert f.edit.kind == EditKind.NODE_POOL
    assert f.changes == [Change(POLICY_FIELD, "WhenEmpty", "WhenEmptyOrUnderutilized"),
                         Change(AFTER_FIELD, "30m", "5m"), Change("nodes", "3", "1")]
    assert f.monthly_savings == pytest.approx(2 * NODE_MONTH, abs=0.01)       # k2 and k3 freed
    assert f.cost_before == pytest.approx(3 * NODE_MONTH, abs=0.01)
    assert [n["node"] for n in f.evidence["nodes_removed"]] == ["k2", "k3"]
    assert {p["pod"]: p["to"] for p in f.evidence["pods_moved"]} == {"shop/web-1": "k1", "shop/web-2": "k1"}
    assert f.evidence["limits"] == {"cpu": "400"} and f.evidence["budgets"][0]["nodes"] == "10%"
    assert f.risk == pytest.approx(0.15 + 0.5 * 0.65)        # k1 ends at 2.6 of 4 cores
    assert f.confidence == pytest.approx(0.85 * 0.8)
    assert f.title == ("Consolidate NodePool general: consolidationPolicy WhenEmptyOrUnderutilized, "
                       "consolidateAfter 5m (3 -> 1 nodes)")
    assert any("removes only empty nodes" in n for n in f.notes)
    assert any("limits (unchanged) cap what the pool may launch: cpu 400" in n for n in f.notes)
    assert f.labels["team"] == "platform"


def test_only_what_keeps_nodes_is_changed():
    never = run(pool_state(NodePool("general", UNDERUTILIZED, "Never")))
    (f,) = never.findings
    assert f.changes[:-1] == [Change(AFTER_FIELD, "Never", "5m")]
    assert "turns consolidation off" in f.notes[0]
    short = run(pool_state(NodePool("general", WHEN_EMPTY, "1m")))
    assert short.findings[0].changes[:-1] == [Change(POLICY_FIELD, "WhenEmpty", "WhenEmptyOrUnderutilized")]


def test_the_proposed_wait_is_a_bounded_setting():
    f = run(pool_state(NodePool("general", UNDERUTILIZED, "2h")),
            policy(node_pools={"consolidateAfterSeconds": 900})).findings[0]
    assert f.changes[0] == Change(AFTER_FIELD, "2h", "15m")
    assert run(pool_state(NodePool("general", UNDERUTILIZED, "10m")),
               policy(node_pools={"consolidateAfterSeconds": 900})).findings == []
    with pytest.raises(ConfigError, match="consolidateAfterSeconds"):
        policy(node_pools={"consolidateAfterSeconds": 86401})
    assert [go_duration(s) for s in (0, 90, 300, 3600, 5400)] == ["0s", "90s", "5m", "1h", "90m"]


def test_a_pool_that_already_consolidates_is_left_to_karpenter():
    result = run(pool_state(NodePool("general", UNDERUTILIZED, "30s")))
    assert result.findings == []
    assert "Karpenter removes them itself" in skips(result)["node-pool/general"]


def test_a_budget_that_blocks_at_all_times_is_named_not_edited():
    pool = NodePool("general", WHEN_EMPTY, "30m", budgets=[DisruptionBudget("10%"), DisruptionBudget("0", [])])
    result = run(pool_state(pool))
    assert result.findings == []
    reason = skips(result)["node-pool/general"]
    assert "spec.disruption.budgets[1] allows '0' nodes at all times" in reason and 'nodes: "10%"' in reason
    # a zero budget only for drift, or only during a schedule, does not block consolidation
    for budget in (DisruptionBudget("0", ["Drifted"]), DisruptionBudget("0%", [], "0 9 * * 1-5", "8h")):
        pool = NodePool("general", WHEN_EMPTY, "30m", budgets=[budget])
        assert len(run(pool_state(pool)).findings) == 1


def test_nodes_without_their_nodepool_in_the_inventory_are_skipped():
    result = run(pool_state(None))
    assert result.findings == []
    assert "NodePool is not in the inventory" in skips(result)["node-pool/general"]


def test_an_unreadable_consolidate_after_is_skipped_with_the_field():
    result = run(pool_state(NodePool("general", WHEN_EMPTY, "1.5h")))
    assert result.findings == []
    reason = skips(result)["node-pool/general"]
    assert "NodePool general: spec.disruption.consolidateAfter" in reason and "'1.5h' is not a duration" in reason


def test_consolidate_after_readings():
    def secs(text):
        return after_seconds(NodePool("p", UNDERUTILIZED, text))
    assert (secs(None), secs("0s"), secs("00m0s"), secs("30m"), secs("1h30m")) == (0, 0, 0, 1800, 5400)
    assert secs("Never") == math.inf


def test_busy_pools_and_blocked_nodes_give_no_finding():
    busy = pool_state(NodePool("general", WHEN_EMPTY, "30m"))
    busy.pod("heavy-2", "k2", 1.8, 2 * GIB, owner="heavy").pod("heavy-3", "k3", 1.8, 2 * GIB, owner="heavy")
    assert run(busy).findings == []
    pinned = pool_state(NodePool("general", WHEN_EMPTY, "30m"))
    for pod in pinned.state.pods:
        if pod.name.startswith("web"):
            pod.annotations["karpenter.sh/do-not-disrupt"] = "true"
    result = run(pinned)
    assert result.findings == []
    assert 'do-not-disrupt: "true"' in skips(result)["node/k2"]


def test_young_nodes_are_not_removable():
    b = pool_state(NodePool("general", WHEN_EMPTY, "30m"))
    for node in b.state.nodes:
        node.created_at = END
    result = run(b)
    assert result.findings == [] and "old (minNodeAgeHours 24)" in skips(result)["node/k2"]


def test_the_idle_node_detector_leaves_karpenter_nodes_to_this_one():
    state = pool_state(NodePool("general", WHEN_EMPTY, "30m"))
    result = IdleNodes(policy(), PriceBook.load()).run(state.build())
    assert result.findings == []
    assert "its NodePool is not a node group" in skips(result)["node/k2"]


def test_realized_once_the_pool_runs_the_estimated_node_count():
    b = pool_state(NodePool("general", WHEN_EMPTY, "30m"))
    (f,) = run(b).findings
    ledger = Ledger()
    ledger.observe([f], {}, END)
    opp = ledger.opportunities[0]
    rates = Rates(0.0, 0.0)
    assert NodePoolConsolidation.realized_savings(opp, b.state, rates) is None        # still 3 nodes
    b.state.nodes = [n for n in b.state.nodes if n.name != "k3"]
    assert NodePoolConsolidation.realized_savings(opp, b.state, rates) is None        # 2 > 1
    b.state.nodes = [n for n in b.state.nodes if n.name != "k2"]
    assert NodePoolConsolidation.realized_savings(opp, b.state, rates) == f.monthly_savings
