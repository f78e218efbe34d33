"""Edits proven (or refused) by rendering the GitOps fixture corpus with the real kustomize, helm and tofu.

A missing or unpinned renderer fails these tests (the ``renderers`` fixture), never skips them.
"""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from finops_operator.actuation.plan import Plan
from finops_operator.actuation.proof import Prover
from finops_operator.actuation.rendertools import RenderTools
from finops_operator.models import (
    Change,
    ChangeSet,
    ClusterState,
    EditKind,
    EditTarget,
    FileEdit,
    Finding,
    FindingType,
    Target,
    TargetKind,
    Window,
    WorkloadRef,
)
from finops_operator.pipeline import ScanResult, _prepare_change_sets
from tests.support.renderers import GITOPS_FIXTURES, Renderers

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


@pytest.fixture
def prover(renderers: Renderers) -> Prover:
    return Prover(tools=RenderTools({"FINOPS_KUSTOMIZE": str(renderers.kustomize), "FINOPS_HELM": str(renderers.helm),
                                     "FINOPS_TOFU": str(renderers.tofu)}))


def finding(namespace: str, name: str, container: str, *changes: tuple[str, str | None, str | None],
            kind: str = "Deployment") -> Finding:
    ref = WorkloadRef(kind, namespace, name)
    return Finding("cpu-rightsizing", FindingType.RIGHTSIZE_CPU, Target(TargetKind.CONTAINER, container, namespace, ref),
                   "title", [Change(*c) for c in changes], 10.0, 0.9, 0.1, EditTarget(EditKind.CONTAINER_RESOURCES))


def edit(root: Path, path: str, old: str, new: str) -> FileEdit:
    before = (root / path).read_text()
    assert old in before, f"{old!r} not in {path}"
    return FileEdit(path, before, before.replace(old, new, 1))


def apply(root: Path, dest: Path, edits: list[FileEdit]) -> Path:
    shutil.copytree(root, dest)
    for e in edits:
        (dest / e.path).write_text(e.after)
    return dest


KUSTOMIZE = GITOPS_FIXTURES / "kustomize"


def test_an_overlay_patch_changes_exactly_the_intended_fields_of_prod_and_nothing_else(
        prover: Prover, renderers: Renderers, tmp_path: Path) -> None:
    edits = [edit(KUSTOMIZE, "overlays/prod/api-resources.yaml", 'cpu: "1"\n              memory: 1Gi',
                  "cpu: 600m\n              memory: 768Mi")]
    f = finding("shop-prod", "api", "api", ("resources.requests.cpu", "1", "600m"),
                ("resources.requests.memory", "1Gi", "768Mi"))
    proof = prover.prove(KUSTOMIZE, edits, [f])
    assert proof.ok, proof.lines
    assert proof.lines == ["rendered overlays/prod: 2 fields changed, as intended"]
    after = apply(KUSTOMIZE, tmp_path / "after", edits)
    for env in ("dev", "staging"):       # the other environments render byte-identical
        assert renderers.kustomize_build(after / "overlays" / env) == renderers.kustomize_build(KUSTOMIZE / "overlays" / env)


def test_editing_the_base_shared_by_every_overlay_fails_naming_the_other_environments(prover: Prover) -> None:
    edits = [edit(KUSTOMIZE, "base/api.yaml", "cpu: 500m", "cpu: 300m")]
    f = finding("shop-dev", "api", "api", ("resources.requests.cpu", "500m", "300m"))
    proof = prover.prove(KUSTOMIZE, edits, [f])
    assert not proof.ok
    assert proof.lines[0] == "rendered overlays/dev: 1 field changed, as intended"
    assert proof.lines[1] == "rendered overlays/prod: unchanged"      # prod's own patch overrides the base
    assert proof.lines[2].startswith(
        "rendered overlays/staging: FAILED: also changes Deployment/shop-staging/api "
        "containers[api].resources.requests.cpu 500m -> 300m, an environment this change set does not target")
    assert proof.failures[f.id] == f"proof failed: {proof.lines[2]}"
    shared = Prover(tools=prover.tools, allow_shared=True).prove(KUSTOMIZE, edits, [f])
    assert shared.ok and shared.lines[2] == (
        "rendered overlays/staging: also changes Deployment/shop-staging/api containers[api].resources.requests.cpu "
        "500m -> 300m (shared edit, allowed by policy)")


def test_an_edit_of_the_wrong_container_fails_with_the_container_that_changed(prover: Prover) -> None:
    edits = [edit(KUSTOMIZE, "overlays/prod/api-resources.yaml", 'cpu: "1"', "cpu: 600m")]
    f = finding("shop-prod", "api", "envoy", ("resources.requests.cpu", "250m", "600m"))
    proof = prover.prove(KUSTOMIZE, edits, [f])
    assert not proof.ok
    assert proof.lines == ["rendered overlays/prod: FAILED: Deployment/shop-prod/api containers[api].resources."
                           "requests.cpu 1 -> 600m changed, which no finding intends"]
    assert set(proof.failures) == {f.id}


def test_helm_chart_values_of_a_kustomize_overlay_are_proven_through_enable_helm(prover: Prover) -> None:
    edits = [edit(KUSTOMIZE, "overlays/prod/cache-values.yaml", "cpu: 500m", "cpu: 350m")]
    f = finding("shop-prod", "cache", "redis", ("resources.requests.cpu", "500m", "350m"), kind="StatefulSet")
    proof = prover.prove(KUSTOMIZE, edits, [f])
    assert proof.ok and proof.lines == ["rendered overlays/prod: 1 field changed, as intended"]


ARGOCD = GITOPS_FIXTURES / "argocd"


def test_a_values_file_edit_is_proven_through_helm_template_of_its_release(prover: Prover) -> None:
    edits = [edit(ARGOCD, "charts/guestbook/values-prod.yaml", "cpu: 500m", "cpu: 400m")]
    f = finding("guestbook", "guestbook", "guestbook", ("resources.requests.cpu", "500m", "400m"))
    proof = prover.prove(ARGOCD, edits, [f])
    assert proof.ok, proof.lines
    assert proof.lines == ["rendered charts/guestbook (release guestbook, values.yaml, values-prod.yaml): "
                           "1 field changed, as intended"]


def test_a_chart_default_shared_by_dev_fails_for_a_prod_finding(prover: Prover) -> None:
    # statsd-exporter's limits.cpu is unset everywhere: setting it in values.yaml reaches dev too.
    edits = [edit(ARGOCD, "charts/guestbook/values.yaml", "    limits:\n      memory: 64Mi",
                  "    limits:\n      cpu: 50m\n      memory: 64Mi")]
    f = finding("guestbook", "guestbook", "statsd-exporter", ("resources.limits.cpu", None, "50m"))
    proof = prover.prove(ARGOCD, edits, [f])
    assert not proof.ok
    assert proof.lines[0].startswith("rendered charts/guestbook (release guestbook, values.yaml, values-dev.yaml): "
                                     "FAILED: also changes Deployment/guestbook-dev/guestbook "
                                     "containers[statsd-exporter].resources.limits.cpu (unset) -> 50m")
    assert proof.lines[1].endswith("values-prod.yaml): 1 field changed, as intended")


RAW_TF = GITOPS_FIXTURES / "terraform" / "raw-nodegroup"


def node_group_finding() -> Finding:
    return Finding("idle-nodes", FindingType.IDLE_NODE, Target(TargetKind.NODE_GROUP, "workers"), "t",
                   [Change("min_size", "3", "2")], 50.0, 0.9, 0.1, EditTarget(EditKind.NODE_GROUP))


def test_a_terraform_edit_that_keeps_the_format_is_proven(prover: Prover) -> None:
    edits = [edit(RAW_TF, "modules/nodegroup/main.tf", "max_unavailable = 1", "max_unavailable = 2")]
    proof = prover.prove(RAW_TF, edits, [node_group_finding()])
    assert proof.ok and proof.lines == [
        "checked modules/nodegroup/main.tf: tofu fmt -check passes, parses with python-hcl2"]


def test_a_terraform_edit_that_breaks_tofu_fmt_is_refused(prover: Prover) -> None:
    # an attribute inserted into an "="-aligned group without re-aligning it
    edits = [edit(RAW_TF, "modules/nodegroup/main.tf", "  capacity_type   = var.capacity_type\n",
                  "  capacity_type   = var.capacity_type\n  force_update_version = true\n")]
    f = node_group_finding()
    proof = prover.prove(RAW_TF, edits, [f])
    assert not proof.ok
    assert proof.failures[f.id].startswith(
        "proof failed: checked modules/nodegroup/main.tf: refused: modules/nodegroup/main.tf: `tofu fmt -check` "
        "fails on the edited text (line 2: 'cluster_name    = var.cluster_name'")


def test_the_pipeline_replans_a_change_set_without_the_finding_its_proof_refuses(prover: Prover, tmp_path: Path) -> None:
    """The prod finding is proven and written; the dev finding, annotated to edit the shared base, is refused."""
    repo = apply(KUSTOMIZE, tmp_path / "repo", [])
    good = finding("shop-prod", "api", "api", ("resources.requests.cpu", "1", "800m"))
    shared = finding("shop-dev", "worker", "metrics-exporter", ("resources.requests.cpu", "25m", "20m"))
    shared.edit = EditTarget(EditKind.CONTAINER_RESOURCES, source_hint="base/worker.yaml")
    cs = ChangeSet("rightsize-shop", "t", [good, shared])
    state = ClusterState("c", "r", Window(NOW, NOW, 60))
    result = ScanResult(state, [good, shared], [], {}, Plan(change_sets=[cs]))
    _prepare_change_sets(result, repo, cluster="c", now=NOW, dry_run=False, prover=prover)
    assert result.plan.change_sets == [cs]
    assert [e.path for e in cs.edits] == ["overlays/prod/api-resources.yaml"]
    assert set(cs.skipped) == {shared.id} and "also changes" in cs.skipped[shared.id]
    assert cs.proof == ["rendered overlays/prod: 1 field changed, as intended"]
    assert "### Proof" in cs.body and "- rendered overlays/prod: 1 field changed, as intended" in cs.body
