"""Terraform edits on real files: node groups (module + raw), variables/locals/tfvars, EBS volume removal."""
from __future__ import annotations

import hcl2
import pytest

from finops_operator.actuation import hcl
from finops_operator.actuation.edits import plan_edits
from finops_operator.errors import EditError
from tests.support.fixtures_edits import changed_lines, edit_for, node_group_finding, volume_finding

EKS = "infra/terraform/eks"


# --------------------------------------------------------------------------- node groups, examples


def test_module_group_through_locals_edits_the_local(gitops_repo):
    f = node_group_finding("general", ("min_size", "3", "2"), ("max_size", "10", "6"))
    result = plan_edits(gitops_repo, [f])
    edit = edit_for(result, f"{EKS}/main.tf")
    assert changed_lines(edit) == ["-  general_min_size     = 3", "-  general_max_size     = 10",
                                   "+  general_min_size     = 2", "+  general_max_size     = 6"]
    assert any("local.general_min_size" in n for n in result.notes[f.id])
    assert result.locations[f.id] == f"{EKS}/main.tf:8"


def test_comments_and_heredoc_survive_byte_for_byte(gitops_repo):
    f = node_group_finding("general", ("desired_size", "4", "3"), ("min_size", "3", "2"))
    result = plan_edits(gitops_repo, [f])
    edit = edit_for(result, f"{EKS}/main.tf")
    heredoc = edit.before[edit.before.index("<<-EOT"):edit.before.index("  EOT\n") + 6]
    assert heredoc in edit.after and "${var.cluster_name}" in heredoc
    assert edit.after.startswith("/*\n * Production EKS cluster.")
    # the module ignores desired_size after creation: only min_size, which takes effect, is edited
    assert changed_lines(edit) == ["-  general_min_size     = 3", "+  general_min_size     = 2"]
    assert any(n.startswith("desired_size not edited") and "ignores desired_size" in n for n in result.notes[f.id])
    hcl2.loads(edit.after)


def test_module_desired_size_alone_is_skipped_because_the_module_ignores_it(gitops_repo):
    f = node_group_finding("general", ("desired_size", "4", "3"))
    result = plan_edits(gitops_repo, [f])
    assert result.edits == []
    assert "ignore_changes" in result.skipped[f.id] and "desired_size" in result.skipped[f.id]


def test_module_group_through_variable_default(gitops_repo):
    f = node_group_finding("batch", ("max_size", "8", "5"))
    result = plan_edits(gitops_repo, [f])
    assert changed_lines(edit_for(result, f"{EKS}/variables.tf")) == ["-  default = 8", "+  default = 5"]
    assert any("var.batch_max_size (default in" in n for n in result.notes[f.id])


def test_module_instance_types_literal(gitops_repo):
    f = node_group_finding("batch", ("instance_types", '["c5.2xlarge"]', '["c6i.xlarge"]'))
    assert changed_lines(edit_for(plan_edits(gitops_repo, [f]), f"{EKS}/main.tf")) == [
        '-      instance_types = ["c5.2xlarge"]', '+      instance_types = ["c6i.xlarge"]']


def test_raw_node_group_scaling_config_and_instance_types(gitops_repo):
    f = node_group_finding("spot", ("max_size", "12", "8"),
                           ("instance_types", "m5.large,m5a.large,m4.large", "m5.large,m5a.large"))
    result = plan_edits(gitops_repo, [f])
    assert changed_lines(edit_for(result, f"{EKS}/nodegroups.tf")) == [
        '-  instance_types  = ["m5.large", "m5a.large", "m4.large"]',
        '+  instance_types  = ["m5.large", "m5a.large"]',
        "-    max_size     = 12   # raised for the 2024 sale",
        "+    max_size     = 8    # raised for the 2024 sale"]
    assert result.notes.get(f.id, []) == []


def test_node_group_value_that_disagrees_with_the_cluster_is_skipped(gitops_repo):
    f = node_group_finding("spot", ("min_size", "3", "1"))
    assert "has min_size = 2 but the cluster shows 3" in plan_edits(gitops_repo, [f]).skipped[f.id]


def test_unknown_node_group(gitops_repo):
    f = node_group_finding("gpu", ("max_size", "4", "2"))
    assert plan_edits(gitops_repo, [f]).skipped[f.id].startswith("node group gpu not found in Terraform")


# --------------------------------------------------------------------------- variables, tfvars, shared locals


def test_variable_without_default_is_skipped_with_where_to_change_it(fixture_repo):
    f = node_group_finding("alpha", ("min_size", "1", "0"))
    reason = plan_edits(fixture_repo("terraform-vars"), [f]).skipped[f.id]
    assert "var.alpha_min has no default" in reason and "TF_VAR_alpha_min" in reason


def test_variable_set_in_tfvars_edits_the_tfvars_not_the_default(fixture_repo):
    f = node_group_finding("beta", ("max_size", "12", "9"))
    result = plan_edits(fixture_repo("terraform-vars"), [f])
    assert [e.path for e in result.edits] == ["infra/terraform.tfvars"]
    assert changed_lines(result.edits[0]) == ["-beta_max = 12", "+beta_max = 9"]


def test_local_shared_by_two_groups_is_not_edited(fixture_repo):
    f = node_group_finding("gamma", ("max_size", "5", "3"))
    reason = plan_edits(fixture_repo("terraform-vars"), [f]).skipped[f.id]
    assert "local.shared_max" in reason and "used in 2 places" in reason


def test_group_found_by_its_name_attribute_and_one_line_object(fixture_repo):
    repo = fixture_repo("terraform-vars")
    f = node_group_finding("gamma", ("min_size", "1", "0"))
    assert changed_lines(edit_for(plan_edits(repo, [f]), "infra/main.tf")) == [
        "-    gamma = { min_size = 1, max_size = local.shared_max }",
        "+    gamma = { min_size = 0, max_size = local.shared_max }"]
    g = node_group_finding("delta-pool", ("max_size", "5", "4"))
    assert "local.shared_max" in plan_edits(repo, [g]).skipped[g.id]


def test_self_managed_groups_through_a_local_map(fixture_repo):
    f = node_group_finding("legacy", ("max_size", "4", "3"))
    edit = edit_for(plan_edits(fixture_repo("terraform-vars"), [f]), "infra/main.tf")
    assert changed_lines(edit) == ["-      max_size      = 4", "+      max_size      = 3"]


def test_malformed_terraform_in_another_directory_is_ignored(fixture_repo):
    f = node_group_finding("beta", ("max_size", "12", "9"))
    assert plan_edits(fixture_repo("terraform-vars"), [f]).skipped == {}


# --------------------------------------------------------------------------- volumes


def test_volume_removal_with_snapshot_first(gitops_repo):
    f = volume_finding("vol-0a1b2c3d4e5f00001", name_tag="legacy-reports", snapshot=True)
    result = plan_edits(gitops_repo, [f])
    volumes = edit_for(result, f"{EKS}/volumes.tf")
    removed = changed_lines(volumes)
    assert all(line.startswith("-") for line in removed) and len(removed) == 12   # comment + block + 1 blank
    assert "-# Monthly finance reports export. The reports job moved to S3 in 2023." in removed
    assert volumes.after.startswith("# EBS volumes created outside Kubernetes (pre-CSI days and CI).\n\n"
                                    "# Jenkins build cache, from before the move to GitHub Actions.\n"
                                    "// TODO(platform)")
    snap = edit_for(result, f"{EKS}/finops_snapshots.tf")
    assert snap.before is None
    assert 'resource "aws_ebs_snapshot" "legacy_reports_final"' in snap.after
    assert 'volume_id   = "vol-0a1b2c3d4e5f00001"' in snap.after
    assert "terraform apply -target=aws_ebs_snapshot.legacy_reports_final" in snap.after
    parsed = hcl.parse(snap.after, "finops_snapshots.tf")
    [block] = parsed.blocks
    assert block.labels == ["aws_ebs_snapshot", "legacy_reports_final"]
    assert block.attributes["volume_id"].value.value == "vol-0a1b2c3d4e5f00001"
    hcl2.loads(snap.after)
    assert any("-target=aws_ebs_snapshot.legacy_reports_final" in n for n in result.notes[f.id])


def test_volume_found_by_volume_id_tag_at_end_of_file_without_snapshot(gitops_repo):
    f = volume_finding("vol-0b7c6d5e4f3a2b101")
    result = plan_edits(gitops_repo, [f])
    volumes = edit_for(result, f"{EKS}/volumes.tf")
    assert volumes.after.endswith('  instance_id = "i-0123456789abcdef0"\n}\n')
    assert changed_lines(volumes)[1] == "-/* Imported in 2022 (terraform import); keeps its AWS id as a tag. */"
    assert [e.path for e in result.edits] == [f"{EKS}/volumes.tf"]


def test_volume_with_merge_tags_and_two_comment_lines(gitops_repo):
    f = volume_finding("vol-0ff", name_tag="old-jenkins-cache")
    edit = edit_for(plan_edits(gitops_repo, [f]), f"{EKS}/volumes.tf")
    lines = changed_lines(edit)
    assert "-// TODO(platform): confirm nothing mounts it any more." in lines
    assert all(line.startswith("-") for line in lines) and len(lines) == 14
    assert '  }\n}\n\nresource "aws_ebs_volume" "grafana_data" {' in edit.after


def test_attached_volume_is_not_removed(gitops_repo):
    f = volume_finding("vol-0aa", name_tag="grafana-data")
    assert "referenced elsewhere" in plan_edits(gitops_repo, [f]).skipped[f.id]


def test_volume_not_in_terraform(gitops_repo):
    f = volume_finding("vol-0dead", name_tag="nobody")
    reason = plan_edits(gitops_repo, [f]).skipped[f.id]
    assert reason.startswith("EBS volume vol-0dead (Name nobody) not found in Terraform")


def test_unparsable_terraform_is_named_when_the_volume_is_not_found(fixture_repo):
    f = volume_finding("vol-0half", name_tag="half-written")
    reason = plan_edits(fixture_repo("terraform-vars"), [f]).skipped[f.id]
    assert "broken/bad.tf: line" in reason and "malformed HCL" in reason


def test_malformed_hcl_error_names_file_and_line():
    with pytest.raises(EditError) as err:
        hcl.parse('resource "a" "b" {\n  size = = 1\n}\n', "infra/x.tf")
    assert err.value.source == "infra/x.tf" and err.value.field == "line 2"


# --------------------------------------------------------------------------- PersistentVolumes


def test_released_pv_document_removed_from_multidoc_file(gitops_repo):
    f = volume_finding("pv-analytics-old", source="pv")
    result = plan_edits(gitops_repo, [f])
    edit = edit_for(result, "apps/analytics/volumes.yaml")
    lines = changed_lines(edit)
    assert lines[0] == "----" and lines[2] == "-apiVersion: v1" and len(lines) == 17
    assert "pv-analytics-archive" in edit.after and edit.after.endswith("vol-0c41d5e7a9b2f3e01\n")


def test_pv_alone_in_its_file_deletes_the_file(tmp_path):
    from tests.support.fixtures_edits import make_repo
    repo = make_repo(tmp_path, {"pv.yaml": "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: old\n"})
    result = plan_edits(repo, [volume_finding("old", source="pv")])
    assert len(result.edits) == 1 and result.edits[0].after is None and result.edits[0].path == "pv.yaml"


def test_sizes_that_aws_would_reject_are_not_proposed(gitops_repo):
    f = node_group_finding("spot", ("desired_size", "4", "1"))
    reason = plan_edits(gitops_repo, [f]).skipped[f.id]
    assert "min_size = 2 above desired_size = 1" in reason
    ok = node_group_finding("spot", ("desired_size", "4", "1"), ("min_size", "2", "1"))
    assert plan_edits(gitops_repo, [ok]).skipped == {}
