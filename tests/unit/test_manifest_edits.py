"""Round-trip edits of plain manifests in a copy of examples/gitops: exact diffs, nothing else moves."""
from __future__ import annotations

from finops_operator.actuation.edits import plan_edits
from tests.support.fixtures_edits import changed_lines, container_finding, edit_for

PAYMENTS = "apps/payments/deployments.yaml"


def test_quoted_millicores_in_multidoc_file_changes_one_line_and_keeps_quotes_and_comment(gitops_repo):
    f = container_finding("Deployment", "payments", "payments-api", "api",
                          ("resources.requests.cpu", "1000m", "350m"))
    result = plan_edits(gitops_repo, [f])
    edit = edit_for(result, PAYMENTS)
    assert changed_lines(edit) == [
        '-              cpu: "1000m"    # sized for Black Friday 2023',
        '+              cpu: "350m"     # sized for Black Friday 2023',
    ]
    assert result.locations[f.id] == f"{PAYMENTS}:42"
    assert result.skipped == {}


def test_leading_document_marker_and_long_lines_survive(gitops_repo):
    f = container_finding("Deployment", "payments", "payments-api", "api",
                          ("resources.requests.memory", "2Gi", "1536Mi"))
    edit = edit_for(plan_edits(gitops_repo, [f]), PAYMENTS)
    assert edit.after.startswith("---\n# Payments")
    long_line = next(line for line in edit.before.splitlines() if len(line) > 100)
    assert long_line in edit.after.splitlines()
    assert changed_lines(edit) == ["-              memory: 2Gi", "+              memory: 1536Mi"]
    assert edit.after.endswith("\n# end of file\n")


def test_unquoted_whole_cpu_in_flow_mapping_and_decimal_memory(gitops_repo):
    f = container_finding("Deployment", "payments", "payments-worker", "worker",
                          ("resources.requests.cpu", "1", "400m"), ("resources.requests.memory", "1G", "700M"))
    edit = edit_for(plan_edits(gitops_repo, [f]), PAYMENTS)
    assert changed_lines(edit) == ["-          requests: {cpu: 1, memory: 1G}",
                                   "+          requests: {cpu: 400m, memory: 700M}"]


def test_native_sidecar_init_container(gitops_repo):
    f = container_finding("Deployment", "payments", "payments-api", "envoy",
                          ("resources.requests.cpu", "250m", "50m"))
    result = plan_edits(gitops_repo, [f])
    assert changed_lines(edit_for(result, PAYMENTS)) == ["-              cpu: 250m", "+              cpu: 50m"]
    assert result.locations[f.id] == f"{PAYMENTS}:31"


def test_limit_removal_removes_only_that_line(gitops_repo):
    f = container_finding("Deployment", "payments", "payments-api", "api",
                          ("resources.limits.cpu", "2000m", None))
    edit = edit_for(plan_edits(gitops_repo, [f]), PAYMENTS)
    assert changed_lines(edit) == ['-              cpu: "2000m"']


def test_removing_the_last_limit_removes_the_empty_limits_block_with_its_comment(gitops_repo):
    f = container_finding("Deployment", "payments", "payments-worker", "worker",
                          ("resources.limits.memory", "1G", None))
    edit = edit_for(plan_edits(gitops_repo, [f]), PAYMENTS)
    assert changed_lines(edit) == ["-          limits:",
                                   "-            memory: 1G   # decimal gigabyte, written by hand years ago"]


def test_cronjob_container(gitops_repo):
    f = container_finding("CronJob", "payments", "payments-reconcile", "reconcile",
                          ("resources.requests.cpu", "500m", "100m"))
    edit = edit_for(plan_edits(gitops_repo, [f]), "apps/payments/cronjob.yaml")
    assert changed_lines(edit) == ["-                  cpu: 500m", "+                  cpu: 100m"]


def test_memory_in_mebibytes_and_in_plain_bytes(gitops_repo):
    batch = container_finding("Deployment", "analytics", "analytics-batch", "worker",
                              ("resources.requests.memory", "6144Mi", "3072Mi"))
    redis = container_finding("StatefulSet", "analytics", "analytics-redis", "redis",
                              ("resources.requests.memory", "4Gi", "2147483648"))
    result = plan_edits(gitops_repo, [batch, redis])
    assert changed_lines(edit_for(result, "apps/analytics/batch.yaml")) == [
        "-              memory: 6144Mi", "+              memory: 3072Mi"]
    # "4Gi" from the cluster equals 4294967296 in the file: same quantity, so the edit goes ahead
    assert changed_lines(edit_for(result, "apps/analytics/redis.yaml")) == [
        "-              memory: 4294967296   # 4 GiB in bytes, as the old Helm chart rendered it",
        "+              memory: 2147483648   # 4 GiB in bytes, as the old Helm chart rendered it"]


def test_container_without_resources_gets_a_block_in_its_indentation(gitops_repo):
    f = container_finding("Deployment", "analytics", "report-ui", "ui",
                          ("resources.requests.cpu", None, "100m"), ("resources.requests.memory", None, "128Mi"))
    result = plan_edits(gitops_repo, [f])
    edit = edit_for(result, "apps/analytics/report-ui.yaml")
    assert changed_lines(edit) == ["+          resources:", "+            requests:",
                                   "+              cpu: 100m", "+              memory: 128Mi"]
    assert result.locations[f.id] == "apps/analytics/report-ui.yaml:28"


def test_several_findings_on_one_file_make_one_edit(gitops_repo):
    a = container_finding("Deployment", "payments", "payments-api", "api", ("resources.requests.cpu", "1000m", "350m"))
    b = container_finding("Deployment", "payments", "payments-worker", "worker",
                          ("resources.requests.cpu", "1", "400m"))
    result = plan_edits(gitops_repo, [a, b])
    assert [e.path for e in result.edits] == [PAYMENTS]
    assert len(changed_lines(result.edits[0])) == 4
    assert (gitops_repo / PAYMENTS).read_text() == result.edits[0].before   # nothing written to disk


def test_repository_and_cluster_disagree_is_skipped_not_overwritten(gitops_repo):
    f = container_finding("Deployment", "payments", "payments-api", "api", ("resources.requests.cpu", "750m", "350m"))
    result = plan_edits(gitops_repo, [f])
    assert result.edits == []
    assert "repository has cpu: 1000m but the cluster runs 750m" in result.skipped[f.id]
    assert PAYMENTS in result.skipped[f.id]


def test_a_finding_is_applied_whole_or_not_at_all(gitops_repo):
    f = container_finding("Deployment", "payments", "payments-api", "api",
                          ("resources.requests.cpu", "1000m", "350m"), ("resources.requests.memory", "3Gi", "1Gi"))
    result = plan_edits(gitops_repo, [f])
    assert result.edits == [] and f.id in result.skipped


def test_workload_not_found_says_how_to_point_at_it(gitops_repo):
    f = container_finding("Deployment", "payments", "payments-ghost", "api", ("resources.requests.cpu", "1", "500m"))
    result = plan_edits(gitops_repo, [f])
    assert result.skipped[f.id].startswith(
        "Deployment payments/payments-ghost not found in the repository (searched ")
    assert "add annotation finops.dev/source: <path> to the workload" in result.skipped[f.id]


def test_wrong_namespace_is_not_found(gitops_repo):
    f = container_finding("Deployment", "default", "payments-api", "api", ("resources.requests.cpu", "1000m", "1"))
    assert "not found" in plan_edits(gitops_repo, [f]).skipped[f.id]


def test_unknown_container_is_named(gitops_repo):
    f = container_finding("Deployment", "payments", "payments-api", "nginx", ("resources.requests.cpu", "1", "2"))
    reason = plan_edits(gitops_repo, [f]).skipped[f.id]
    assert "no container named 'nginx'" in reason and PAYMENTS in reason
