"""End to end: a cluster whose Karpenter NodePool keeps under-used nodes -> a proven NodePool edit.

The state holds NodePool general (WhenEmpty, 30m, as in tests/fixtures/gitops/karpenter)
and its nodes; the scan runs every detector with the guardrails and the plan, edits a
copy of the fixture repository and proves the edit with the real kustomize.
"""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from finops_operator.actuation.proof import Prover
from finops_operator.actuation.rendertools import RenderTools
from finops_operator.guardrails import GuardrailContext
from finops_operator.models import ConsolidationPolicy, DisruptionBudget, FindingType, NodePool, Verdict
from finops_operator.pipeline import scan
from finops_operator.pricing.catalog import PriceBook
from finops_operator.settings import load_policy
from tests.support.fixtures_detectors import GIB, StateBuilder
from tests.support.fixtures_edits import changed_lines
from tests.support.renderers import GITOPS_FIXTURES, Renderers

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)       # a Tuesday, inside any change window
SETTINGS = load_policy({"detectors": {"nodePools": {"consolidateAfterSeconds": 300}},     # ~$420/month: allowed
                        "guardrails": {"approvalAboveDollars": 1000, "maxSingleChangeDollars": 1000}}, source="test")


@pytest.fixture
def prover(renderers: Renderers) -> Prover:
    return Prover(tools=RenderTools({"FINOPS_KUSTOMIZE": str(renderers.kustomize), "FINOPS_HELM": str(renderers.helm),
                                     "FINOPS_TOFU": str(renderers.tofu)}))


def karpenter_state(policy_name: ConsolidationPolicy = ConsolidationPolicy.WHEN_EMPTY, after: str = "30m"):
    """general: 4 Karpenter nodes, one busy and three at ~8%; batch: one busy node."""
    b = StateBuilder(cluster="shop-prod")
    for name in ("g1", "g2", "g3", "g4"):
        b.node(name, group="general", cpu=4.0, memory=16 * GIB, labels={"karpenter.sh/nodepool": "general"})
    b.node("b1", group="batch", cpu=4.0, memory=16 * GIB, labels={"karpenter.sh/nodepool": "batch"})
    b.pod("checkout-1", "g1", 1.5, 4 * GIB, owner="checkout")
    for i, node in enumerate(("g2", "g3", "g4")):
        b.pod(f"web-{i}", node, 0.3, 1 * GIB, owner="web")
    b.pod("etl-1", "b1", 3.0, 10 * GIB, owner="etl")
    b.state.node_pools = [
        NodePool("general", policy_name, after, {"cpu": "400", "memory": "1600Gi"}, [DisruptionBudget("10%")]),
        NodePool("batch", ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED, "5m", {"cpu": "128"},
                 [DisruptionBudget("10%")])]
    return b.build()


def test_a_scan_turns_a_nodepool_that_keeps_idle_nodes_into_a_proven_nodepool_edit(prover: Prover,
                                                                                  tmp_path: Path) -> None:
    repo = tmp_path / "karpenter"
    shutil.copytree(GITOPS_FIXTURES / "karpenter", repo)
    result = scan(karpenter_state(), SETTINGS, prices=PriceBook.load(), repo_root=repo,
                  context=GuardrailContext(now=NOW), prover=prover)
    (f,) = [f for f in result.findings if f.type == FindingType.NODEPOOL_CONSOLIDATION]
    assert f.target.name == "general" and result.verdict_of(f) == Verdict.ALLOW
    assert [c.after for c in f.changes] == ["WhenEmptyOrUnderutilized", "5m", "1"]
    assert not [x for x in result.findings if x.type == FindingType.IDLE_NODE]      # not a node group
    assert "its NodePool is not a node group" in {s.target: s.reason for s in result.skipped}["node/g2"]
    (cs,) = [c for c in result.change_sets if f in c.findings]
    assert cs.id == "node-pools" and cs.skipped == {}
    (edit,) = cs.edits
    assert edit.path == "nodepool.yaml"
    assert changed_lines(edit) == ["-    consolidationPolicy: WhenEmpty", "-    consolidateAfter: 30m",
                                   "+    consolidationPolicy: WhenEmptyOrUnderutilized", "+    consolidateAfter: 5m"]
    assert cs.proof == ["rendered .: 2 fields changed, as intended"]
    assert "rendered .: 2 fields changed, as intended" in cs.body and "NodePool" in cs.title
    assert (repo / "nodepool.yaml").read_text() == (GITOPS_FIXTURES / "karpenter" / "nodepool.yaml").read_text()


def test_a_repository_that_disagrees_with_the_cluster_writes_nothing(prover: Prover, tmp_path: Path) -> None:
    repo = tmp_path / "karpenter"
    shutil.copytree(GITOPS_FIXTURES / "karpenter", repo)
    state = karpenter_state(after="2h")               # the cluster runs 2h, the repository says 30m
    result = scan(state, SETTINGS, prices=PriceBook.load(), repo_root=repo, context=GuardrailContext(now=NOW),
                  prover=prover)
    assert [f.target.name for f in result.findings if f.type == FindingType.NODEPOOL_CONSOLIDATION] == ["general"]
    assert not [c for c in result.change_sets if c.id == "node-pools"]
    assert any("node-pools: nodepool.yaml: spec.disruption.consolidateAfter: the repository has "
               "consolidateAfter: 30m but the cluster runs 2h" in e for e in result.errors)
