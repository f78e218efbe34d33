"""The Terraform fixtures are `tofu fmt`-clean, parse with python-hcl2 and hold the values their READMEs name."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.support.kubeprocs import CommandError
from tests.support.renderers import GITOPS_FIXTURES, Renderers

pytestmark = pytest.mark.integration

TERRAFORM = GITOPS_FIXTURES / "terraform"


def parse(path: Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text())


def unquote(value: Any) -> Any:
    """python-hcl2 8.x keeps string literals quoted; strip them (lists too)."""
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value[1:-1] if isinstance(value, str) and value.startswith('"') and value.endswith('"') else value


def test_every_terraform_file_passes_tofu_fmt_check(renderers: Renderers) -> None:
    files = sorted(TERRAFORM.rglob("*.tf")) + sorted(TERRAFORM.rglob("*.tfvars"))
    assert len(files) >= 12
    renderers.tofu_fmt_check(TERRAFORM)


def test_tofu_fmt_check_names_a_badly_formatted_file(renderers: Renderers, tmp_path: Path) -> None:
    copy = tmp_path / "raw-nodegroup"
    shutil.copytree(TERRAFORM / "raw-nodegroup", copy)
    tfvars = copy / "prod.auto.tfvars"
    tfvars.write_text(tfvars.read_text().replace("node_desired_size   = 4", "node_desired_size = 4"))
    with pytest.raises(CommandError) as err:
        renderers.tofu_fmt_check(copy)
    assert "prod.auto.tfvars" in str(err.value)


def test_every_terraform_file_parses_with_python_hcl2() -> None:
    for path in sorted(TERRAFORM.rglob("*.tf")) + sorted(TERRAFORM.rglob("*.tfvars")):
        assert isinstance(parse(path), dict), path


def test_eks_module_groups_come_from_locals_through_for_expressions() -> None:
    root = TERRAFORM / "eks-module"
    (module,) = parse(root / "main.tf")["module"]
    eks = module['"eks"']
    assert unquote(eks["source"]) == "terraform-aws-modules/eks/aws"
    assert "local.managed_node_groups" in eks["eks_managed_node_groups"]
    assert "local.self_managed_node_groups" in eks["self_managed_node_groups"]
    (local,) = parse(root / "locals.tf")["locals"]
    managed = local["managed_node_groups"]
    assert {k: (unquote(g["instance_types"]), g["min_size"], g["max_size"], g["desired_size"]) for k, g in managed.items()} == {
        "general": (["m6i.xlarge"], 3, 10, 3),
        "memory": (["r6i.2xlarge"], 1, 4, 2),
    }
    runners = local["self_managed_node_groups"]["ci-runners"]
    assert (unquote(runners["instance_type"]), runners["min_size"], runners["max_size"]) == ("c6i.2xlarge", 0, 6)


def test_raw_nodegroup_values_flow_from_tfvars_through_root_variables() -> None:
    root = TERRAFORM / "raw-nodegroup"
    tfvars, auto = parse(root / "terraform.tfvars"), parse(root / "prod.auto.tfvars")
    effective = {**tfvars, **auto}  # *.auto.tfvars load after terraform.tfvars
    assert unquote(effective["node_instance_types"]) == ["m5.xlarge"]
    assert (effective["node_desired_size"], effective["node_min_size"], effective["node_max_size"]) == (4, 2, 6)
    modules = {unquote(name): body for m in parse(root / "main.tf")["module"] for name, body in m.items()}
    general = modules["general_nodes"]
    assert unquote(general["source"]) == "./modules/nodegroup"
    assert general["desired_size"] == "${var.node_desired_size}"
    assert modules["batch_nodes"]["desired_size"] == 1
    (resource,) = parse(root / "modules" / "nodegroup" / "main.tf")["resource"]
    group = resource['"aws_eks_node_group"']['"this"']
    assert group["scaling_config"][0]["desired_size"] == "${var.desired_size}"
    defaults = {unquote(k): v for var in parse(root / "modules" / "nodegroup" / "variables.tf")["variable"] for k, v in var.items()}
    assert defaults["desired_size"]["default"] == 2  # the default both callers override
