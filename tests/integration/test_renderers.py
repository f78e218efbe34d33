"""The pinned renderers work and the GitOps fixture corpus renders to what its READMEs say.

Every entry point of tests/fixtures/gitops is rendered with the real kustomize
and helm (as Argo CD and Flux would render it) and the container resources of
each environment are compared with the table below, so a later edit can be
proved by rendering against a known starting point.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.kubeprocs import CommandError, read_versions_env
from tests.support.renderers import (
    GITOPS_FIXTURES,
    RendererMissing,
    Renderers,
    container_resources,
    find_object,
    find_renderers,
    objects,
    res,
    run,
)
from tests.support.renderers import workload_resources as workloads

pytestmark = pytest.mark.integration

GITOPS = GITOPS_FIXTURES


# --- the tools themselves -------------------------------------------------------


def test_renderers_report_the_pinned_versions(renderers: Renderers) -> None:
    pins = read_versions_env()
    assert run([str(renderers.kustomize), "version"]).stdout.strip() == pins["KUSTOMIZE_VERSION"]
    assert run([str(renderers.tofu), "version"]).stdout.splitlines()[0] == f"OpenTofu {pins['TOFU_VERSION']}"
    assert run([str(renderers.helm), "version", "--short"]).stdout.strip().split("+")[0] == pins["HELM_VERSION"]


def test_missing_renderers_fail_naming_each_binary_and_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FINOPS_TOOLS_DIR", str(tmp_path))
    with pytest.raises(RendererMissing) as err:
        find_renderers()
    message = str(err.value)
    for tool in ("kustomize", "helm", "tofu"):
        assert f"{tmp_path}/bin/{tool} is missing" in message
    assert "make tools" in message and "install-render-tools.sh" in message


def test_a_renderer_that_is_not_the_pinned_version_is_refused(
    renderers: Renderers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "bin").mkdir()
    for tool in ("kustomize", "helm", "tofu"):
        (tmp_path / "bin" / tool).symlink_to(getattr(renderers, tool))
        shutil.copy(renderers.kustomize.parent / f".{tool}.version", tmp_path / "bin" / f".{tool}.version")
    (tmp_path / "bin" / ".tofu.version").write_text("v0.0.1\n")
    monkeypatch.setenv("FINOPS_TOOLS_DIR", str(tmp_path))
    with pytest.raises(RendererMissing, match=rf"{tmp_path}/bin/tofu is not the pinned {read_versions_env()['TOFU_VERSION']}"):
        find_renderers()


# --- kustomize: base, overlays, component, helmCharts -------------------------

API = {
    "api": res("500m", "512Mi", "1", "1Gi"),
    "envoy": res("100m", "128Mi", "200m", "256Mi"),
    "log-shipper": res("50m", "64Mi", None, "128Mi"),
}
OTEL = {"otel-agent": res("50m", "100Mi", "200m", "200Mi")}
WORKER = {"worker": res("250m", "512Mi", None, "1Gi"), "metrics-exporter": res("25m", "32Mi", "100m", "64Mi")}
KUSTOMIZE_EXPECTED = {
    "dev": {
        ("Deployment", "api"): API,
        ("Deployment", "worker"): {**WORKER, "worker": res("100m", "256Mi", None, "512Mi")},
    },
    "staging": {
        ("Deployment", "api"): {**API, **OTEL},
        ("Deployment", "worker"): {**WORKER, "worker": res("200m", "768Mi", None, "1536Mi")},
    },
    "prod": {
        ("Deployment", "api"): {
            **API,
            "api": res("1", "1Gi", "2", "2Gi"),
            "envoy": res("250m", "128Mi", "500m", "256Mi"),
            **OTEL,
        },
        ("Deployment", "worker"): WORKER,
        ("StatefulSet", "cache"): {"redis": res("500m", "2Gi", None, "2Gi"), "exporter": res("20m", "24Mi", None, "48Mi")},
    },
}


@pytest.mark.parametrize("env", sorted(KUSTOMIZE_EXPECTED))
def test_kustomize_overlay_renders_its_environment(renderers: Renderers, env: str) -> None:
    docs = objects(renderers.kustomize_build(GITOPS / "kustomize" / "overlays" / env, enable_helm=env == "prod"))
    assert workloads(docs) == KUSTOMIZE_EXPECTED[env]
    assert {d["metadata"].get("namespace") for d in docs} == {f"shop-{env}"}
    api = find_object(docs, "Deployment", "api")["spec"]["template"]["spec"]["containers"]
    # the overlays' JSON 6902 ops address containers by index: the order is part of the fixture
    assert [c["name"] for c in api] == list(KUSTOMIZE_EXPECTED[env][("Deployment", "api")])


def test_kustomize_helm_charts_need_enable_helm(renderers: Renderers) -> None:
    with pytest.raises(CommandError, match="enable-helm"):
        renderers.kustomize_build(GITOPS / "kustomize" / "overlays" / "prod")


def test_kustomize_helm_chart_takes_values_file_then_inline_values(renderers: Renderers) -> None:
    docs = objects(renderers.kustomize_build(GITOPS / "kustomize" / "overlays" / "prod", enable_helm=True))
    cache = find_object(docs, "StatefulSet", "cache")
    assert cache["spec"]["replicas"] == 3  # from cache-values.yaml
    assert cache["spec"]["template"]["spec"]["containers"][0]["args"] == ["--maxmemory", "1600mb"]


# --- chart: per-component values, one component hard-coded ----------------------

CHART_DEFAULTS = {
    ("Deployment", "shop-app"): {"app": res("250m", "256Mi", "500m", "512Mi")},
    ("Deployment", "shop-worker"): {"worker": res("200m", "384Mi", None, "768Mi")},
    ("StatefulSet", "shop-redis"): {"redis": res("100m", "128Mi", None, "256Mi")},
    ("Deployment", "shop-pgbouncer"): {"pgbouncer": res("50m", "64Mi", "200m", "128Mi")},
}
CHART_EXPECTED = {
    "dev": {
        **{k: v for k, v in CHART_DEFAULTS.items() if k[1] != "shop-pgbouncer"},
        ("Deployment", "shop-app"): {"app": res("100m", "128Mi", "250m", "256Mi")},
    },
    "staging": {**CHART_DEFAULTS, ("Deployment", "shop-worker"): {"worker": res("200m", "512Mi", None, "1Gi")}},
    "prod": {
        **CHART_DEFAULTS,
        ("Deployment", "shop-app"): {"app": res("1", "1Gi", "2", "2Gi")},
        ("Deployment", "shop-worker"): {"worker": res("500m", "1Gi", None, "2Gi")},
        ("StatefulSet", "shop-redis"): {"redis": res("250m", "1Gi", None, "1Gi")},
    },
}


@pytest.mark.parametrize("env", sorted(CHART_EXPECTED))
def test_chart_renders_each_environment_values_file(renderers: Renderers, env: str) -> None:
    chart = GITOPS / "chart" / "shop"
    docs = objects(renderers.helm_template(chart, release="shop", values=[chart / f"values-{env}.yaml"]))
    assert workloads(docs) == CHART_EXPECTED[env]


def test_chart_hard_coded_resources_ignore_values(renderers: Renderers) -> None:
    chart = GITOPS / "chart" / "shop"
    docs = objects(renderers.helm_template(chart, release="shop", set_values=["pgbouncer.resources.requests.cpu=9"]))
    assert container_resources(docs, "Deployment", "shop-pgbouncer") == CHART_DEFAULTS[("Deployment", "shop-pgbouncer")]


# --- karpenter ------------------------------------------------------------------


def test_karpenter_nodepools_render_with_their_node_class(renderers: Renderers) -> None:
    docs = objects(renderers.kustomize_build(GITOPS / "karpenter"))
    pools = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NodePool"}
    assert {d["apiVersion"] for d in pools.values()} == {"karpenter.sh/v1"}
    assert {n: p["spec"]["disruption"]["consolidationPolicy"] for n, p in pools.items()} == {
        "general": "WhenEmpty",
        "batch": "WhenEmptyOrUnderutilized",
    }
    node_class = find_object(docs, "EC2NodeClass", "default")
    assert node_class["apiVersion"] == "karpenter.k8s.aws/v1"
    assert {p["spec"]["template"]["spec"]["nodeClassRef"]["name"] for p in pools.values()} == {"default"}


def _fixture_files(fixture: str) -> list[Path]:
    return sorted(p for p in (GITOPS / fixture).rglob("*") if p.is_file())


def test_every_fixture_has_a_readme_naming_its_model() -> None:
    for fixture in ("kustomize", "argocd", "flux", "chart", "terraform/eks-module", "terraform/raw-nodegroup", "karpenter"):
        readme = " ".join((GITOPS / fixture / "README.md").read_text().split())
        assert "Shape:" in readme and "Written for this project" in readme, fixture
        assert "Targets" in readme, fixture
    assert not [p for p in _fixture_files(".") if os.access(p, os.X_OK)], "fixtures are data, not executables"
