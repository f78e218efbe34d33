"""plan_edits as a whole: many findings, nothing written, self-checks that fail loudly."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from finops_operator.actuation import yamledit
from finops_operator.actuation.edits import EditResult, plan_edits
from finops_operator.actuation.manifests import remove_document
from finops_operator.errors import EditError
from tests.support.fixtures_edits import (changed_lines, container_finding, node_group_finding,
                                          volume_finding)


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


def test_demo_like_change_set_over_the_whole_example_repo(gitops_repo):
    findings = [
        container_finding("Deployment", "payments", "payments-api", "api", ("resources.requests.cpu", "1000m", "350m")),
        container_finding("Deployment", "payments", "payments-worker", "worker",
                          ("resources.requests.memory", "1G", "600M")),
        container_finding("Deployment", "checkout", "checkout-web", "web",
                          ("resources.requests.memory", "1536Mi", "1Gi")),
        container_finding("Deployment", "search", "search-api", "api", ("resources.requests.cpu", "2", "1")),
        container_finding("Deployment", "analytics", "report-ui", "ui", ("resources.requests.cpu", None, "50m")),
        node_group_finding("spot", ("min_size", "2", "1")),
        volume_finding("vol-0123", name_tag="legacy-reports", snapshot=True),
        volume_finding("pv-analytics-old", source="pv"),
        container_finding("Deployment", "payments", "payments-ghost", "api", ("resources.requests.cpu", "1", "2")),
    ]
    before = _tree_digest(gitops_repo)
    result = plan_edits(gitops_repo, findings)
    assert isinstance(result, EditResult)
    assert _tree_digest(gitops_repo) == before                      # nothing written
    assert list(result.skipped) == [findings[-1].id]
    assert set(result.locations) == {f.id for f in findings[:-1]}
    paths = [e.path for e in result.edits]
    assert len(paths) == len(set(paths)) == 8
    for edit in result.edits:
        assert edit.before != edit.after
        if edit.after and edit.path.endswith(".yaml"):
            list(yaml.safe_load_all(edit.after))
    one_liners = [e for e in result.edits if e.path in ("apps/payments/deployments.yaml",
                                                        "apps/search/chart/values-production.yaml",
                                                        "apps/checkout/overlays/production/patch-resources.yaml",
                                                        "infra/terraform/eks/nodegroups.tf")]
    assert len(one_liners) == 4
    for edit in one_liners:
        assert len(changed_lines(edit)) == (4 if edit.path.endswith("deployments.yaml") else 2), edit.path


def test_location_format_is_path_colon_line(gitops_repo):
    f = node_group_finding("spot", ("max_size", "12", "10"))
    assert plan_edits(gitops_repo, [f]).locations[f.id] == "infra/terraform/eks/nodegroups.tf:13"


def test_verify_fails_loudly_when_more_than_the_value_changed():
    before = "a:\n  cpu: 1\n  memory: 1Gi\n"
    sneaky = "a:\n  cpu: 2\n  memory: 2Gi\n"
    with pytest.raises(EditError, match="self-check failed"):
        yamledit.verify(before, sneaky, "x.yaml", 0, ["a", "cpu"], "2", prune_from=1)
    yamledit.verify(before, "a:\n  cpu: 2\n  memory: 1Gi\n", "x.yaml", 0, ["a", "cpu"], "2", prune_from=1)


def test_compose_error_names_file_and_line():
    with pytest.raises(EditError) as err:
        yamledit.compose("a: 1\nb: [2\n", "apps/x.yaml")
    assert err.value.source == "apps/x.yaml" and err.value.field.startswith("line ")
    assert "malformed YAML" in str(err.value)


def test_remove_first_document_without_separator_keeps_the_rest():
    text = "kind: PersistentVolume\nmetadata:\n  name: old\n---\n# keep me\nkind: PersistentVolume\nmetadata:\n  name: new\n"
    assert remove_document(text, "pv.yaml", "PersistentVolume", "old") == \
        "# keep me\nkind: PersistentVolume\nmetadata:\n  name: new\n"


def test_remove_middle_document_keeps_both_neighbours_and_separators():
    text = "---\nkind: A\nmetadata: {name: a}\n---\nkind: PersistentVolume\nmetadata: {name: old}\n---\nkind: B\n" \
           "metadata: {name: b}\n"
    assert remove_document(text, "x.yaml", "PersistentVolume", "old") == \
        "---\nkind: A\nmetadata: {name: a}\n---\nkind: B\nmetadata: {name: b}\n"


def test_long_values_are_not_wrapped(tmp_path):
    from tests.support.fixtures_edits import make_repo
    long_env = "x" * 150
    repo = make_repo(tmp_path, {"d.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: n}\nspec:\n  template:\n    spec:\n"
        "      containers:\n      - name: c\n        env:\n        - {name: LONG, value: " + long_env + "}\n"
        "        resources:\n          requests:\n            cpu: 100m\n")})
    f = container_finding("Deployment", "n", "d", "c", ("resources.requests.cpu", "100m", "1"))
    [edit] = plan_edits(repo, [f]).edits
    assert changed_lines(edit) == ["-            cpu: 100m", "+            cpu: 1"]
    assert "value: " + long_env + "}" in edit.after


def test_block_scalar_as_last_key_does_not_swallow_the_next_line(tmp_path):
    from tests.support.fixtures_edits import make_repo
    text = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: n}\nspec:\n  template:\n"
            "    spec:\n      containers:\n      - name: c\n        command: |\n          echo one\n"
            "          echo two\n      - name: d\n        resources:\n          limits:\n"
            "            cpu: 1\n          requests:\n            script: |\n              x\n"
            "            cpu: 500m\n")
    repo = make_repo(tmp_path, {"d.yaml": text})
    add = container_finding("Deployment", "n", "d", "c", ("resources.requests.cpu", None, "10m"))
    [edit] = plan_edits(repo, [add]).edits
    assert changed_lines(edit) == ["+        resources:", "+          requests:", "+            cpu: 10m"]
    assert edit.after.index("echo two\n        resources:") > 0
