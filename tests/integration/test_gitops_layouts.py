"""The Argo CD and Flux fixtures render, from their entry points, as those controllers would.

Argo CD: every Application under argocd/apps is rendered from its source
(Helm chart + valueFiles + parameters, or a Kustomize path). Flux: each
cluster's Kustomizations are followed from clusters/<env> to their paths and
each HelmRelease is templated with its chart from the GitRepository and its
values merged as Flux merges them (valuesFrom in order, then values).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.renderers import GITOPS_FIXTURES as GITOPS
from tests.support.renderers import Renderers, find_object, objects, res
from tests.support.renderers import workload_resources as workloads

pytestmark = pytest.mark.integration

ARGOCD = GITOPS / "argocd"
FLUX = GITOPS / "flux"


# --- Argo CD app of apps ----------------------------------------------------------


def render_application(renderers: Renderers, app: dict[str, Any]) -> list[dict[str, Any]]:
    """Render one Application's single source from the fixture repository root."""
    source = app["spec"]["source"]
    path = ARGOCD / source["path"]
    if "helm" in source:
        helm = source["helm"]
        return objects(
            renderers.helm_template(
                path,
                release=helm.get("releaseName", app["metadata"]["name"]),
                namespace=app["spec"]["destination"]["namespace"],
                values=[path / f for f in helm.get("valueFiles", [])],
                set_values=[f"{p['name']}={p['value']}" for p in helm.get("parameters", [])],
            )
        )
    return objects(renderers.kustomize_build(path))


ARGOCD_EXPECTED = {
    "guestbook-dev": (
        1,
        {("Deployment", "guestbook"): {"guestbook": res("50m", "64Mi", "100m", "128Mi"), "statsd-exporter": res("10m", "32Mi", None, "64Mi")}},
    ),
    "guestbook-prod": (
        5,
        {("Deployment", "guestbook"): {"guestbook": res("500m", "512Mi", "1", "1Gi"), "statsd-exporter": res("20m", "48Mi", None, "96Mi")}},
    ),
    "frontend-prod": (
        4,
        {("Deployment", "frontend"): {"frontend": res("400m", "512Mi", None, "1Gi"), "nginx": res("50m", "32Mi", None, "64Mi")}},
    ),
}


def test_root_application_syncs_every_application_in_apps() -> None:
    root = yaml.safe_load((ARGOCD / "bootstrap" / "root.yaml").read_text())
    apps = [yaml.safe_load(p.read_text()) for p in sorted((ARGOCD / root["spec"]["source"]["path"]).glob("*.yaml"))]
    assert {a["kind"] for a in apps} == {"Application"}
    assert sorted(a["metadata"]["name"] for a in apps) == sorted(ARGOCD_EXPECTED)


@pytest.mark.parametrize("name", sorted(ARGOCD_EXPECTED))
def test_argocd_application_renders_its_environment(renderers: Renderers, name: str) -> None:
    app = yaml.safe_load((ARGOCD / "apps" / f"{name}.yaml").read_text())
    docs = render_application(renderers, app)
    replicas, expected = ARGOCD_EXPECTED[name]
    assert workloads(docs) == expected
    (kind, workload), = expected
    assert find_object(docs, kind, workload)["spec"]["replicas"] == replicas


# --- Flux: clusters/<env> -> Kustomizations -> HelmReleases -------------------------


def flux_render(renderers: Renderers, env: str, tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """{Flux Kustomization name: the objects it applies, HelmReleases templated}, from clusters/<env>."""
    entry = flux_build(renderers, FLUX / "clusters" / env)
    applied: dict[str, list[dict[str, Any]]] = {}
    for ks in entry:
        if ks["kind"] != "Kustomization" or ks["metadata"]["name"] == "flux-system":
            continue
        docs = flux_build(renderers, FLUX / ks["spec"]["path"])
        for release in [d for d in docs if d["kind"] == "HelmRelease"]:
            docs += template_release(renderers, release, docs, tmp_path)
        applied[ks["metadata"]["name"]] = docs
    return applied


def flux_build(renderers: Renderers, path: Path) -> list[dict[str, Any]]:
    """What a Flux Kustomization applies from PATH: `kustomize build` where there is a
    kustomization.yaml; otherwise, as kustomize-controller generates one, every
    manifest in the directory and its subdirectories."""
    if (path / "kustomization.yaml").exists():
        return objects(renderers.kustomize_build(path))
    docs = []
    for child in sorted(path.iterdir()):
        if child.is_dir():
            docs += flux_build(renderers, child)
        elif child.suffix in (".yaml", ".yml"):
            docs += objects(child.read_text())
    return docs


def template_release(renderers: Renderers, release: dict[str, Any], docs: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    """helm template a HelmRelease whose chart comes from the repository's GitRepository."""
    spec = release["spec"]
    assert spec["chart"]["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}
    values = []
    for n, ref in enumerate(spec.get("valuesFrom", [])):
        source = find_object(docs, ref["kind"], ref["name"])
        values.append(tmp / f"{release['metadata']['name']}-from-{n}.yaml")
        values[-1].write_text(source["data"][ref.get("valuesKey", "values.yaml")])
    values.append(tmp / f"{release['metadata']['name']}-values.yaml")
    values[-1].write_text(yaml.safe_dump(spec.get("values", {})))
    return objects(
        renderers.helm_template(
            FLUX / spec["chart"]["spec"]["chart"],
            release=spec.get("releaseName", release["metadata"]["name"]),
            namespace=release["metadata"]["namespace"],
            values=values,
        )
    )


FLUX_EXPECTED = {
    "staging": {
        "apps": {
            ("Deployment", "webapp-web"): {"web": res("200m", "256Mi", None, "512Mi")},
            ("Deployment", "webapp-consumer"): {"consumer": res("100m", "128Mi", None, "256Mi")},
        },
        "infra-controllers": {("Deployment", "cluster-autoscaler"): {"cluster-autoscaler": res("100m", "300Mi", None, "600Mi")}},
    },
    "production": {
        "apps": {
            ("Deployment", "webapp-web"): {"web": res("500m", "512Mi", None, "1Gi")},
            ("Deployment", "webapp-consumer"): {"consumer": res("250m", "256Mi", None, "512Mi")},
        },
        "infra-controllers": {("Deployment", "cluster-autoscaler"): {"cluster-autoscaler": res("200m", "600Mi", None, "1Gi")}},
    },
}
FLUX_REPLICAS = {"staging": {"webapp-web": 2, "webapp-consumer": 1}, "production": {"webapp-web": 4, "webapp-consumer": 3}}


@pytest.mark.parametrize("env", sorted(FLUX_EXPECTED))
def test_flux_cluster_renders_its_environment(renderers: Renderers, env: str, tmp_path: Path) -> None:
    applied = flux_render(renderers, env, tmp_path)
    assert {name: workloads(docs) for name, docs in applied.items()} == FLUX_EXPECTED[env]
    for name, replicas in FLUX_REPLICAS[env].items():
        assert find_object(applied["apps"], "Deployment", name)["spec"]["replicas"] == replicas
    assert sorted(d["metadata"]["name"] for d in flux_build(renderers, FLUX / "clusters" / env) if d["kind"] == "Kustomization") == [
        "apps",
        "flux-system",
        "infra-controllers",
    ]
    release = find_object(applied["apps"], "HelmRelease", "webapp")
    assert release["metadata"]["namespace"] == "webapp"
    assert find_object(applied["apps"], "ConfigMap", "webapp-values")["metadata"]["namespace"] == "webapp"
