"""The NodePool editor (actuation/nodepool.py) on the Karpenter fixture repository and variants of it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from finops_operator.actuation.edits import plan_edits
from finops_operator.models import Change, EditKind, EditTarget, Finding, FindingType, Target, TargetKind
from tests.support.fixtures_edits import changed_lines, make_repo

KARPENTER = Path(__file__).resolve().parents[1] / "fixtures" / "gitops" / "karpenter"
POLICY = "spec.disruption.consolidationPolicy"
AFTER = "spec.disruption.consolidateAfter"


def pool_finding(name: str, *changes: tuple[str, str | None, str | None]) -> Finding:
    return Finding("nodepool-consolidation", FindingType.NODEPOOL_CONSOLIDATION, Target(TargetKind.NODE_POOL, name),
                   f"Consolidate NodePool {name}", [Change(*c) for c in changes] + [Change("nodes", "3", "1")],
                   280.3, 0.7, 0.3, EditTarget(EditKind.NODE_POOL))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dest = tmp_path / "karpenter"
    shutil.copytree(KARPENTER, dest)
    return dest


def test_only_the_two_disruption_lines_of_the_general_nodepool_change(repo: Path):
    f = pool_finding("general", (POLICY, "WhenEmpty", "WhenEmptyOrUnderutilized"), (AFTER, "30m", "5m"))
    result = plan_edits(repo, [f])
    assert result.skipped == {}
    (edit,) = result.edits
    assert edit.path == "nodepool.yaml"
    assert changed_lines(edit) == ["-    consolidationPolicy: WhenEmpty", "-    consolidateAfter: 30m",
                                   "+    consolidationPolicy: WhenEmptyOrUnderutilized", "+    consolidateAfter: 5m"]
    assert result.locations[f.id] == "nodepool.yaml:38"
    assert result.notes[f.id] == [
        "NodePool general in nodepool.yaml: disruption.consolidationPolicy WhenEmpty -> WhenEmptyOrUnderutilized",
        "NodePool general in nodepool.yaml: disruption.consolidateAfter 30m -> 5m"]
    # the batch NodePool (second document) and every comment are untouched
    assert edit.after.split("---")[1] == edit.before.split("---")[1]
    assert "# Only empty nodes are removed" in edit.after


def test_a_missing_consolidate_after_is_added_under_disruption(tmp_path: Path):
    root = make_repo(tmp_path / "r", {"pools/general.yaml": (
        "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: general\nspec:\n"
        "  disruption:\n    consolidationPolicy: WhenEmptyOrUnderutilized\n  limits:\n    cpu: \"400\"\n")})
    result = plan_edits(root, [pool_finding("general", (AFTER, None, "5m"))])
    (edit,) = result.edits
    assert changed_lines(edit) == ["+    consolidateAfter: 5m"]
    assert edit.after.index("consolidateAfter: 5m") < edit.after.index("limits:")


def test_a_nodepool_in_a_list_is_edited_in_place(tmp_path: Path):
    root = make_repo(tmp_path / "r", {"pools.yaml": (
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - apiVersion: karpenter.sh/v1\n    kind: NodePool\n    metadata: {name: general}\n"
        "    spec:\n      disruption:\n        consolidationPolicy: WhenEmpty\n        consolidateAfter: 1h\n")})
    result = plan_edits(root, [pool_finding("general", (POLICY, "WhenEmpty", "WhenEmptyOrUnderutilized"))])
    assert changed_lines(result.edits[0]) == ["-        consolidationPolicy: WhenEmpty",
                                              "+        consolidationPolicy: WhenEmptyOrUnderutilized"]


def test_refusals_name_the_files_and_the_fix(repo: Path, tmp_path: Path):
    missing = pool_finding("gpu", (POLICY, "WhenEmpty", "WhenEmptyOrUnderutilized"))
    disagree = pool_finding("batch", (POLICY, "WhenEmpty", "WhenEmptyOrUnderutilized"))
    result = plan_edits(repo, [missing, disagree])
    assert result.edits == []
    assert "NodePool gpu not found in the repository" in result.skipped[missing.id]
    assert result.skipped[disagree.id] == ("nodepool.yaml: spec.disruption.consolidationPolicy: the repository has "
                                           "consolidationPolicy: WhenEmptyOrUnderutilized but the cluster runs "
                                           "WhenEmpty; sync the NodePool before changing it")
    shutil.copy(repo / "nodepool.yaml", repo / "copy.yaml")
    twice = pool_finding("general", (POLICY, "WhenEmpty", "WhenEmptyOrUnderutilized"))
    reason = plan_edits(repo, [twice]).skipped[twice.id]
    assert "NodePool general is defined in several files: copy.yaml (document 1), nodepool.yaml (document 1)" in reason


def test_a_kustomize_patch_of_the_nodepool_is_not_its_definition(repo: Path):
    make_repo(repo, {"overlay/kustomization.yaml": "resources: [../]\npatches:\n  - path: pool-patch.yaml\n",
                     "overlay/pool-patch.yaml": ("apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n"
                                                 "  name: general\nspec:\n  weight: 20\n")})
    f = pool_finding("general", (AFTER, "30m", "5m"))
    result = plan_edits(repo, [f])
    assert result.skipped == {} and [e.path for e in result.edits] == ["nodepool.yaml"]
