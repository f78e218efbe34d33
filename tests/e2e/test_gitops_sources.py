"""The live path of the deploy mapping, on the test kube-apiserver, as the chart's ServiceAccount.

Argo CD ``Application`` and Flux ``Kustomization``/``HelmRelease`` objects (CRDs in
their upstream shapes, tests/fixtures/crds/) pointing at the corpus in
tests/fixtures/gitops/{argocd,flux} decide which entry point deploys workloads that
carry the controllers' labels; without them the policy's paths decide; without the
CRDs nothing fails. The reads are the operator's own (KubernetesSource) with the
chart's RBAC, so a missing grant fails here.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from finops_operator.actuation.locate import RepoIndex
from finops_operator.api.wiring import api_client_from
from finops_operator.gitops.deploymap import DeployPolicy, assign_sources
from finops_operator.gitops.records import parse_records
from finops_operator.sources.kubernetes import KubernetesSource

from tests.support.fixtures_operator import install_chart

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CRDS = FIXTURES / "crds"
GITOPS = FIXTURES / "gitops"
NS = "finops-gitops"
CRD_NAMES = ("applications.argoproj.io", "kustomizations.kustomize.toolkit.fluxcd.io",
             "helmreleases.helm.toolkit.fluxcd.io")
ARGO_REPO = "https://github.com/example-org/shop-gitops.git"


def _deployment(ns: str, name: str, *, labels: dict | None = None, annotations: dict | None = None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}, "annotations": annotations or {}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": "nginx",
                                                           "resources": {"requests": {"cpu": "100m"}}}]}}}}


def _apply(kube, *docs: dict) -> None:
    namespaces = sorted({d["metadata"]["namespace"] for d in docs if d["metadata"].get("namespace")})
    for namespace in namespaces:
        if kube.kubectl("get", "namespace", namespace, check=False).returncode != 0:
            kube.kubectl("create", "namespace", namespace)
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def _fixture_docs(*paths: str) -> list[dict]:
    return [d for p in paths for d in yaml.safe_load_all((GITOPS / p).read_text()) if d]


@pytest.fixture(scope="module")
def sa_client(kube):
    sa = install_chart(kube, "gitops", NS)
    client = api_client_from(str(sa))
    yield client
    client.close()


LIVE = [
    # Argo CD (annotation tracking): the prod release of the guestbook chart.
    _deployment("guestbook", "guestbook", annotations={
        "argocd.argoproj.io/tracking-id": "guestbook-prod:apps/Deployment:guestbook/guestbook"}),
    # Flux: a shared base deployed by both overlays; the Kustomization's labels say production.
    _deployment("kube-system", "cluster-autoscaler", labels={
        "kustomize.toolkit.fluxcd.io/name": "infra-controllers",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}),
    # Flux: rendered by the HelmRelease webapp.
    _deployment("webapp", "webapp-web", labels={"helm.toolkit.fluxcd.io/name": "webapp",
                                                "helm.toolkit.fluxcd.io/namespace": "webapp"}),
]


def _read(sa_client) -> tuple[list, list, list[str]]:
    source = KubernetesSource(sa_client)
    inventory = source.read(None)
    objects, warnings = source.read_controllers()
    return inventory.workloads, parse_records(objects), warnings


def _by_name(workloads, names) -> dict:
    return {w.ref.name: w for w in workloads if w.ref.name in names}


def test_without_the_crds_nothing_fails_and_the_policy_paths_decide(sa_client, kube):
    for crd in CRD_NAMES:
        assert kube.kubectl("get", "crd", crd, check=False).returncode != 0, f"{crd} is installed already"
    _apply(kube, *LIVE)
    workloads, records, warnings = _read(sa_client)
    assert records == [] and warnings == []
    autoscaler = _by_name(workloads, {"cluster-autoscaler"})
    assign_sources(list(autoscaler.values()), RepoIndex(GITOPS / "flux").catalogue(),
                   DeployPolicy(paths=("infrastructure/controllers/staging",)), records)
    source = autoscaler["cluster-autoscaler"].source
    assert (source.entry_point, source.rule) == ("infrastructure/controllers/staging", "policy-paths")


def test_argocd_and_flux_records_decide_for_the_workloads_they_deploy(sa_client, kube):
    kube.kubectl("apply", "-f", str(CRDS))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c}" for c in CRD_NAMES))
    helmrelease = _fixture_docs("flux/apps/base/webapp/release.yaml")[0]
    helmrelease["metadata"]["labels"] = {"kustomize.toolkit.fluxcd.io/name": "apps",
                                         "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    _apply(kube, *_fixture_docs("argocd/apps/guestbook-dev.yaml", "argocd/apps/guestbook-prod.yaml",
                                "argocd/apps/frontend-prod.yaml", "flux/clusters/production/apps.yaml",
                                "flux/clusters/production/infrastructure.yaml"), helmrelease, *LIVE)

    workloads, records, warnings = _read(sa_client)
    assert warnings == [], warnings
    assert sorted((r.kind, r.name) for r in records) == [
        ("Application", "frontend-prod"), ("Application", "guestbook-dev"), ("Application", "guestbook-prod"),
        ("HelmRelease", "webapp"), ("Kustomization", "apps"), ("Kustomization", "infra-controllers")]
    live = _by_name(workloads, {"guestbook", "cluster-autoscaler", "webapp-web"})

    # Even with a policy path naming staging, the controller's record wins: it is what deploys here.
    assign_sources([live["cluster-autoscaler"], live["webapp-web"]], RepoIndex(GITOPS / "flux").catalogue(),
                   DeployPolicy(paths=("infrastructure/controllers/staging",)), records)
    assign_sources([live["guestbook"]], RepoIndex(GITOPS / "argocd").catalogue(),
                   DeployPolicy(repository=ARGO_REPO), records)
    guestbook = live["guestbook"].source
    assert (guestbook.entry_point, guestbook.rule, guestbook.kind, guestbook.values_files) == (
        "charts/guestbook", "argocd", "helm", ("charts/guestbook/values.yaml", "charts/guestbook/values-prod.yaml"))
    autoscaler = live["cluster-autoscaler"].source
    assert (autoscaler.entry_point, autoscaler.rule) == ("infrastructure/controllers/production", "flux")
    web = live["webapp-web"].source
    assert (web.entry_point, web.rule, web.kind, web.release) == ("charts/webapp", "flux", "helm", "webapp")
    assert web.inline_values == ("apps/base/webapp/release.yaml", "apps/production/webapp-values.yaml")

    # An Application of another repository does not count: no rule decides for the guestbook then
    # (the editor takes the only candidate, or refuses several naming them).
    live["guestbook"].source = None                 # as a fresh read has it
    assign_sources([live["guestbook"]], RepoIndex(GITOPS / "argocd").catalogue(),
                   DeployPolicy(repository="example-org/another-repo"), records)
    assert live["guestbook"].source is None
