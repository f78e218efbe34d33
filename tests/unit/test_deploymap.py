"""Which entry point deploys a live workload here: each rule, their order, and the refusal with candidates."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from finops_operator.actuation.edits import plan_edits
from finops_operator.actuation.locate import RepoIndex
from finops_operator.actuation.manifests import Ambiguous, resolve_container
from finops_operator.gitops.deploymap import DeployPolicy, assign_sources, candidates, decide
from finops_operator.gitops.records import owner_of, parse_records, same_repository
from finops_operator.models import (Container, ContainerRole, DeploySource, EditKind, EditTarget, Resources, Workload,
                                    WorkloadRef)
from tests.support.fixtures_edits import changed_lines, container_finding, make_repo

GITOPS = Path(__file__).resolve().parents[1] / "fixtures" / "gitops"
REPO = "https://github.com/example-org/shop-gitops.git"
CPU = "resources.requests.cpu"


def _docs(*paths: str) -> list[dict]:
    return [d for p in paths for d in yaml.safe_load_all((GITOPS / p).read_text()) if d]


def _objects(*paths: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for doc in _docs(*paths):
        out.setdefault(doc["kind"], []).append(doc)
    return out


def _workload(kind: str, ns: str, name: str, *, labels=None, annotations=None) -> Workload:
    return Workload(WorkloadRef(kind, ns, name), 1, [Container(name, ContainerRole.APP, Resources())],
                    labels=dict(labels or {}), annotations=dict(annotations or {}))


ARGO = _objects("argocd/apps/guestbook-dev.yaml", "argocd/apps/guestbook-prod.yaml", "argocd/apps/frontend-prod.yaml")
FLUX = _objects("flux/clusters/production/apps.yaml", "flux/clusters/production/infrastructure.yaml",
                "flux/apps/base/webapp/release.yaml")
# What the cluster holds: the HelmRelease as the apps Kustomization applied it (labelled by Flux).
FLUX["HelmRelease"][0]["metadata"]["labels"] = {"kustomize.toolkit.fluxcd.io/name": "apps",
                                                "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}


# --------------------------------------------------------------------------- controller records


def test_argocd_tracking_id_picks_the_application_with_its_values_files_and_release():
    index = RepoIndex(GITOPS / "argocd")
    wl = _workload("Deployment", "guestbook", "guestbook",
                   annotations={"argocd.argoproj.io/tracking-id": "guestbook-prod:apps/Deployment:guestbook/guestbook"})
    source = decide(wl, index.catalogue(), DeployPolicy(repository=REPO), parse_records(ARGO))
    assert source == DeploySource("charts/guestbook", "argocd", "helm",
                                  values_files=("charts/guestbook/values.yaml", "charts/guestbook/values-prod.yaml"),
                                  release="guestbook", revision="main")


def test_argocd_instance_label_joins_a_kustomize_application():
    index = RepoIndex(GITOPS / "argocd")
    wl = _workload("Deployment", "frontend", "frontend", labels={"app.kubernetes.io/instance": "frontend-prod"})
    source = decide(wl, index.catalogue(), DeployPolicy(repository="example-org/shop-gitops"), parse_records(ARGO))
    assert (source.entry_point, source.rule, source.kind) == ("kustomize/frontend/overlays/prod", "argocd", "kustomize")


def test_an_application_of_another_repository_does_not_count():
    index = RepoIndex(GITOPS / "argocd")
    wl = _workload("Deployment", "frontend", "frontend", labels={"app.kubernetes.io/instance": "frontend-prod"})
    assert decide(wl, index.catalogue(), DeployPolicy(repository="other-org/fleet"), parse_records(ARGO)) is None


def test_flux_kustomization_labels_pick_this_clusters_overlay_of_a_shared_base():
    index = RepoIndex(GITOPS / "flux")
    wl = _workload("Deployment", "kube-system", "cluster-autoscaler",
                   labels={"kustomize.toolkit.fluxcd.io/name": "infra-controllers",
                           "kustomize.toolkit.fluxcd.io/namespace": "flux-system"})
    assert [e.path for e in candidates(index.catalogue(), wl.ref)] == \
        ["infrastructure/controllers/production", "infrastructure/controllers/staging"]
    source = decide(wl, index.catalogue(), DeployPolicy(), parse_records(FLUX))
    assert (source.entry_point, source.rule, source.kind) == ("infrastructure/controllers/production", "flux",
                                                              "kustomize")


def test_flux_helmrelease_labels_pick_the_chart_and_the_values_its_kustomization_applies():
    index = RepoIndex(GITOPS / "flux")
    wl = _workload("Deployment", "webapp", "webapp-web",
                   labels={"helm.toolkit.fluxcd.io/name": "webapp", "helm.toolkit.fluxcd.io/namespace": "webapp"})
    source = decide(wl, index.catalogue(), DeployPolicy(), parse_records(FLUX))
    assert (source.entry_point, source.rule, source.kind, source.release) == ("charts/webapp", "flux", "helm", "webapp")
    assert source.inline_values == ("apps/base/webapp/release.yaml", "apps/production/webapp-values.yaml")


def test_joins_need_the_controllers_own_marks():
    records = parse_records(ARGO)
    wrong_kind = _workload("StatefulSet", "guestbook", "guestbook", annotations={
        "argocd.argoproj.io/tracking-id": "guestbook-prod:apps/Deployment:guestbook/guestbook"})
    unknown_app = _workload("Deployment", "x", "x", labels={"app.kubernetes.io/instance": "nope"})
    assert owner_of(wrong_kind, records) is None and owner_of(unknown_app, records) is None


@pytest.mark.parametrize("url,repository,same", [
    ("https://github.com/Example-Org/shop-gitops.git", "example-org/shop-gitops", True),
    ("git@github.com:example-org/shop-gitops.git", "https://github.com/example-org/shop-gitops", True),
    ("ssh://git@github.com:22/example-org/shop-gitops", "example-org/shop-gitops", True),
    ("https://github.com/example-org/shop-gitops-old", "example-org/shop-gitops", False),
    ("https://gitlab.com/example-org/shop-gitops", "https://github.com/example-org/shop-gitops", False),
])
def test_repository_urls_are_compared_as_repositories(url, repository, same):
    assert same_repository(url, repository) is same


def test_a_malformed_record_is_skipped_not_fatal():
    records = parse_records({"Application": [{"metadata": {"name": "x"}, "spec": {"source": "not a mapping"}}],
                             "HelmRelease": [{"metadata": {"name": "y"}, "spec": {"chart": {"spec": {
                                 "chart": "podinfo", "sourceRef": {"kind": "HelmRepository"}}}}}]})
    assert [r.name for r in records] == ["y"] and "HelmRepository" in records[0].problem


# --------------------------------------------------------------------------- policy paths, annotation, order

OVERLAY = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
resources: [../../base]
patches:
  - path: resources.yaml
"""
PATCH = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      containers:
        - name: api
          resources:
            requests:
              cpu: {cpu}
"""


@pytest.fixture
def shared_ns(tmp_path: Path) -> Path:
    """dev/prod/staging overlays deploying the same namespace (one per cluster): nothing in the repo says which."""
    files = {"base/kustomization.yaml": "resources: [api.yaml]\n",
             "base/api.yaml": PATCH.format(cpu="500m").replace("metadata:\n  name: api",
                                                             "metadata:\n  name: api\n  labels: {app: api}")}
    for env, cpu in (("dev", "100m"), ("prod", '"1"'), ("staging", "250m")):
        files[f"overlays/{env}/kustomization.yaml"] = OVERLAY
        files[f"overlays/{env}/resources.yaml"] = PATCH.format(cpu=cpu)
    return make_repo(tmp_path / "repo", files)


def test_several_overlays_and_no_rule_is_refused_naming_the_candidates_and_the_fix(shared_ns):
    f = container_finding("Deployment", "shop", "api", "api", (CPU, "1", "600m"))
    with pytest.raises(Ambiguous) as err:
        resolve_container(RepoIndex(shared_ns), f)
    text = str(err.value)
    assert "3 entry points" in text and "overlays/dev; overlays/prod; overlays/staging" in text
    assert "spec.git.paths: [<one of them>]" in text and "--entry-point <one of them>" in text
    assert "finops.dev/source: <one of them>" in text
    result = plan_edits(shared_ns, [f])        # once, as the finding's skip reason: nothing written
    assert result.edits == [] and result.skipped[f.id] == text


def test_policy_paths_choose_the_overlay_and_only_its_patch_is_edited(shared_ns):
    wl = _workload("Deployment", "shop", "api")
    counts = assign_sources([wl], RepoIndex(shared_ns).catalogue(), DeployPolicy(paths=("overlays/prod",)))
    assert counts == {"policy-paths": 1}
    assert (wl.source.entry_point, wl.source.rule, wl.source.kind) == ("overlays/prod", "policy-paths", "kustomize")
    f = container_finding("Deployment", "shop", "api", "api", (CPU, "1", "600m"))
    f.edit = EditTarget(EditKind.CONTAINER_RESOURCES, deploy=wl.source)
    result = plan_edits(shared_ns, [f])
    assert [e.path for e in result.edits] == ["overlays/prod/resources.yaml"]
    assert changed_lines(result.edits[0]) == ['-              cpu: "1"', '+              cpu: "600m"']


def test_the_cli_entry_point_narrows_like_a_path(shared_ns):
    wl = _workload("Deployment", "shop", "api")
    source = decide(wl, RepoIndex(shared_ns).catalogue(), DeployPolicy(paths=("overlays",), entry_point="overlays/staging"))
    assert source.entry_point == "overlays/staging"
    assert decide(wl, RepoIndex(shared_ns).catalogue(), DeployPolicy(paths=("overlays",))) is None   # still 3


def test_annotation_names_a_file_of_one_candidate(shared_ns):
    wl = _workload("Deployment", "shop", "api", annotations={"finops.dev/source": "overlays/staging/resources.yaml"})
    source = decide(wl, RepoIndex(shared_ns).catalogue(), DeployPolicy())
    assert (source.entry_point, source.rule) == ("overlays/staging", "annotation")
    outside = _workload("Deployment", "shop", "api", annotations={"finops.dev/source": "../etc/passwd"})
    assert decide(outside, RepoIndex(shared_ns).catalogue(), DeployPolicy()) is None


def test_rules_apply_in_order_controller_then_paths_then_annotation():
    index = RepoIndex(GITOPS / "flux")
    marks = {"labels": {"kustomize.toolkit.fluxcd.io/name": "infra-controllers",
                        "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
             "annotations": {"finops.dev/source": "infrastructure/controllers/staging"}}
    wl = _workload("Deployment", "kube-system", "cluster-autoscaler", **marks)
    policy = DeployPolicy(paths=("infrastructure/controllers/staging",))
    assert decide(wl, index.catalogue(), policy, parse_records(FLUX)).rule == "flux"
    assert decide(wl, index.catalogue(), policy, []).rule == "policy-paths"
    annotated = decide(wl, index.catalogue(), DeployPolicy(paths=("infrastructure",)), [])
    assert (annotated.rule, annotated.entry_point) == ("annotation", "infrastructure/controllers/staging")


def test_a_deploy_source_that_does_not_render_the_workload_is_refused(shared_ns):
    f = container_finding("Deployment", "shop", "api", "api", (CPU, "1", "600m"))
    f.edit = EditTarget(EditKind.CONTAINER_RESOURCES, deploy=DeploySource("base", "policy-paths"))
    with pytest.raises(Exception, match="not an entry point of the repository"):
        resolve_container(RepoIndex(shared_ns), f)
