"""Terraform values through module boundaries (issue 8): edit where the value is set for this instance."""
from __future__ import annotations

import shutil
from pathlib import Path

import hcl2
import pytest

from finops_operator.actuation.edits import plan_edits
from tests.support.fixtures_edits import changed_lines, edit_for, make_repo, node_group_finding

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "gitops" / "terraform" / "raw-nodegroup"


@pytest.fixture
def raw_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(CORPUS, root)
    return root


def test_desired_size_is_edited_where_this_instance_gets_it(raw_repo):
    """The child's default (2) is overridden by the root: the edit goes to prod.auto.tfvars, not the default."""
    f = node_group_finding("prod-general", ("desired_size", "4", "3"))
    result = plan_edits(raw_repo, [f])
    assert f.id not in result.skipped, result.skipped
    assert [e.path for e in result.edits] == ["prod.auto.tfvars"]
    assert changed_lines(result.edits[0]) == ["-node_desired_size   = 4", "+node_desired_size   = 3"]
    note = " ".join(result.notes[f.id])
    assert 'passed by module "general_nodes" in main.tf' in note and "prod.auto.tfvars" in note
    hcl2.loads(result.edits[0].after)


def test_min_size_comes_from_terraform_tfvars(raw_repo):
    f = node_group_finding("prod-general", ("min_size", "2", "1"))
    result = plan_edits(raw_repo, [f])
    assert [e.path for e in result.edits] == ["terraform.tfvars"]
    assert changed_lines(result.edits[0]) == ["-node_min_size       = 2", "+node_min_size       = 1"]


def test_literal_inputs_of_another_instance_are_edited_in_the_module_block(raw_repo):
    f = node_group_finding("prod-batch", ("max_size", "4", "3"))
    result = plan_edits(raw_repo, [f])
    edit = edit_for(result, "main.tf")
    assert changed_lines(edit) == ["-  max_size       = 4", "+  max_size       = 3"]
    assert "modules/nodegroup/variables.tf" not in {e.path for e in result.edits}


def test_out_of_sync_is_judged_against_the_instance_value(raw_repo):
    """The file says 4 for prod-general (auto.tfvars wins over terraform.tfvars' 3): 3 is not 'in sync'."""
    f = node_group_finding("prod-general", ("desired_size", "3", "2"))
    result = plan_edits(raw_repo, [f])
    assert "has desired_size = 4 but the cluster shows 3" in result.skipped[f.id]


def test_a_default_shared_by_instances_is_refused(tmp_path):
    repo = make_repo(tmp_path / "r", {
        "main.tf": 'module "a" {\n  source = "./ng"\n  name   = "a"\n}\n\nmodule "b" {\n  source = "./ng"\n  name   = "b"\n}\n',
        "ng/main.tf": 'resource "aws_eks_node_group" "this" {\n  node_group_name = var.name\n  scaling_config {\n'
                      '    desired_size = var.desired\n    min_size     = 1\n    max_size     = 5\n  }\n}\n',
        "ng/variables.tf": 'variable "name" {}\n\nvariable "desired" {\n  default = 3\n}\n'})
    f = node_group_finding("a", ("desired_size", "3", "2"))
    result = plan_edits(repo, [f])
    assert not result.edits
    assert "used by 2 module instances" in result.skipped[f.id]


def test_generated_node_group_names_match_their_prefix(tmp_path):
    repo = make_repo(tmp_path / "r", {
        "main.tf": 'resource "aws_eks_node_group" "general" {\n  node_group_name_prefix = "general"\n'
                   '  scaling_config {\n    desired_size = 3\n    min_size     = 1\n    max_size     = 5\n  }\n}\n'})
    f = node_group_finding("general-20240105123456789012345678", ("max_size", "5", "4"))
    result = plan_edits(repo, [f])
    assert [e.path for e in result.edits] == ["main.tf"], result.skipped


EKS_CORPUS = CORPUS.parent / "eks-module"


@pytest.fixture
def eks_repo(tmp_path: Path) -> Path:
    root = tmp_path / "eks"
    shutil.copytree(EKS_CORPUS, root)
    return root


def test_eks_module_groups_through_for_expressions_and_generated_names(eks_repo):
    """terraform-aws-modules/eks groups built with `for` over locals maps; AWS names them '<key>-<26 digits>'."""
    f = node_group_finding("general-20240105123456789012345678", ("desired_size", "5", "4"), ("min_size", "3", "2"))
    result = plan_edits(eks_repo, [f])
    assert [e.path for e in result.edits] == ["locals.tf"], result.skipped
    assert changed_lines(result.edits[0]) == ["-      min_size       = 3", "+      min_size       = 2"]
    # the live count (5) differs from the file (3): the autoscaler owns it, not drift
    assert any(n.startswith("desired_size not edited") for n in result.notes[f.id])


def test_eks_module_desired_only_says_what_takes_effect(eks_repo):
    f = node_group_finding("memory-20240105123456789012345678", ("desired_size", "2", "1"))
    result = plan_edits(eks_repo, [f])
    assert not result.edits
    assert "nothing in Terraform holds the group above 1 nodes (min_size is 1 in locals.tf)" in result.skipped[f.id]


def test_self_managed_group_fields_pass_through_the_for_body(eks_repo):
    f = node_group_finding("ci-runners", ("max_size", "6", "4"))
    result = plan_edits(eks_repo, [f])
    assert [e.path for e in result.edits] == ["locals.tf"], result.skipped


def test_a_group_the_cluster_autoscaler_scales_is_not_out_of_sync(tmp_path):
    """Live count 5, file 3, autoscaler tags: not drift; min_size is what takes effect."""
    repo = make_repo(tmp_path / "r", {
        "main.tf": 'resource "aws_eks_node_group" "general" {\n  node_group_name = "general"\n'
                   '  scaling_config {\n    desired_size = 3\n    min_size     = 4\n    max_size     = 8\n  }\n'
                   '  tags = {\n    "k8s.io/cluster-autoscaler/enabled" = "true"\n  }\n}\n'})
    f = node_group_finding("general", ("desired_size", "5", "3"), ("min_size", "4", "3"))
    result = plan_edits(repo, [f])
    assert changed_lines(result.edits[0]) == ["-    min_size     = 4", "+    min_size     = 3"], result.skipped
    assert any("Cluster Autoscaler sets this group's running size" in n for n in result.notes[f.id])
