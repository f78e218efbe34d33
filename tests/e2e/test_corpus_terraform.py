"""The Terraform corpus end to end: an idle node group found in a cluster, its edit written where this
module instance gets the value, proven (tofu fmt, python-hcl2) and `tofu fmt -check` clean afterwards.

tests/fixtures/gitops/terraform/raw-nodegroup: a child module fed by root variables, tfvars and an
auto.tfvars; the child's defaults are overridden by both callers, so editing them would do nothing.
tests/fixtures/gitops/terraform/eks-module: terraform-aws-modules/eks groups built with `for` over
locals; AWS names them "<key>-<26 digits>"; the module ignores desired_size after creation.
"""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import hcl2

from finops_operator.actuation.proof import Prover
from finops_operator.actuation.rendertools import RenderTools
from finops_operator.guardrails import GuardrailContext
from finops_operator.models import NodeGroup
from finops_operator.pipeline import scan
from finops_operator.settings import load_policy
from tests.support.fixtures_detectors import GIB, StateBuilder
from tests.support.renderers import GITOPS_FIXTURES, Renderers

NOW = datetime(2024, 6, 15, 12, tzinfo=timezone.utc)
POLICY = {"detectors": {"cpu": {"enabled": False}, "memory": {"enabled": False}, "volumes": {"enabled": False}},
          "guardrails": {"approvalAboveDollars": 10_000, "maxSingleChangeDollars": 10_000,
                         "maxSingleChangePercent": 100, "protectedLabels": {}}}


def idle_group(group: str, nodes: int, *, bounds: NodeGroup | None = None):
    """``nodes`` nodes of ``group``, one of them busy: the others can go."""
    b = StateBuilder(cluster="shop")
    for i in range(nodes):
        b.node(f"{group[:12]}-{i}", group=group, instance_type="m5.xlarge", cpu=4.0, memory=16 * GIB)
    b.pod("busy", f"{group[:12]}-0", 1.0, 2 * GIB)
    state = b.build()
    state.node_groups = [bounds] if bounds else []
    return state


def run(renderers: Renderers, fixture: str, state, tmp_path: Path):
    root = tmp_path / "repo"
    shutil.copytree(GITOPS_FIXTURES / "terraform" / fixture, root)
    tools = RenderTools({"FINOPS_KUSTOMIZE": str(renderers.kustomize), "FINOPS_HELM": str(renderers.helm),
                         "FINOPS_TOFU": str(renderers.tofu), "PATH": ""})
    result = scan(state, load_policy(POLICY), repo_root=root, prover=Prover(tools=tools),
                  context=GuardrailContext(now=NOW))
    return result, root


def apply(result, root: Path) -> None:
    for cs in result.change_sets:
        for edit in cs.edits:
            (root / edit.path).write_text(edit.after)


def test_raw_node_group_edit_lands_in_this_instances_tfvars(renderers: Renderers, tmp_path: Path):
    bounds = NodeGroup("prod-general", min_size=2, max_size=6, desired_size=4)     # as EKS reports it
    result, root = run(renderers, "raw-nodegroup", idle_group("prod-general", 4, bounds=bounds), tmp_path)
    [cs] = result.change_sets
    assert [e.path for e in cs.edits] == ["prod.auto.tfvars"], (cs.skipped, result.errors)
    assert any(line.startswith("checked prod.auto.tfvars") for line in cs.proof), cs.proof
    before = (root / "modules/nodegroup/variables.tf").read_text()
    apply(result, root)
    renderers.tofu_fmt_check(root)                                   # the whole corpus stays fmt-clean
    assert hcl2.loads((root / "prod.auto.tfvars").read_text())["node_desired_size"] == 2
    assert (root / "modules/nodegroup/variables.tf").read_text() == before    # the unused default is untouched


def test_eks_module_group_desired_only_is_refused_with_what_holds_it(renderers: Renderers, tmp_path: Path):
    name = "general-20240105123456789012345678"
    state = idle_group(name, 5, bounds=NodeGroup(name, min_size=3, max_size=10, desired_size=5))
    result, root = run(renderers, "eks-module", state, tmp_path)
    assert not result.change_sets
    [error] = result.errors
    assert "module ignores desired_size" in error and "nothing in Terraform holds the group above 3 nodes" in error
