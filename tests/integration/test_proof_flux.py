"""Flux HelmReleases proven through their Kustomization: the chart rendered with Flux-merged values.

The flux fixture's apps overlays render a HelmRelease (chart ./charts/webapp in the
repository, values from a ConfigMap through valuesFrom, then spec.values). The proof
judges the Deployments helm-controller would install, not the HelmRelease object.
Real kustomize and helm; a missing renderer fails these tests.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from finops_operator.actuation.fluxhelm import expand, values_from
from finops_operator.actuation.proof import Prover
from finops_operator.actuation.rendertools import RenderTools
from finops_operator.models import DeploySource
from tests.integration.test_proof_render import edit, finding, prover  # noqa: F401  (the fixture)
from tests.support.renderers import GITOPS_FIXTURES, Renderers, container_resources, objects

pytestmark = pytest.mark.integration
FLUX = GITOPS_FIXTURES / "flux"


def staging(f):
    deploy = DeploySource("charts/webapp", "flux", "helm", release="webapp", kustomization="apps/staging")
    return replace(f, edit=replace(f.edit, deploy=deploy))


def test_the_rendering_holds_the_charts_deployments_with_flux_merged_values(renderers: Renderers) -> None:
    tools = RenderTools({"FINOPS_HELM": str(renderers.helm), "PATH": ""})
    for env, web_cpu, consumer_cpu, consumer_replicas in (("staging", "200m", "100m", 1),
                                                           ("production", "500m", "250m", 3)):
        docs = objects(expand(renderers.kustomize_build(FLUX / "apps" / env), FLUX, tools))
        assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == [
            ("Deployment", "webapp-consumer"), ("Deployment", "webapp-web"), ("Namespace", "webapp")]
        assert container_resources(docs, "Deployment", "webapp-web")["web"]["requests"]["cpu"] == web_cpu
        assert container_resources(docs, "Deployment", "webapp-consumer")["consumer"]["requests"]["cpu"] == consumer_cpu
        consumer = next(d for d in docs if d["metadata"]["name"] == "webapp-consumer")
        assert consumer["spec"]["replicas"] == consumer_replicas


def test_values_merge_valuesfrom_in_order_then_spec_values() -> None:
    hr = {"kind": "HelmRelease", "metadata": {"name": "a", "namespace": "ns"},
          "spec": {"valuesFrom": [{"kind": "ConfigMap", "name": "one"},
                                  {"kind": "Secret", "name": "two", "valuesKey": "v"},
                                  {"kind": "ConfigMap", "name": "gone", "optional": True}],
                   "values": {"x": {"c": 3}}}}
    objs = [hr, {"kind": "ConfigMap", "metadata": {"name": "one", "namespace": "ns"},
                 "data": {"values.yaml": "x: {a: 1, b: 1, c: 1}"}},
            {"kind": "Secret", "metadata": {"name": "two", "namespace": "ns"}, "data": {"v": "eDoge2I6IDJ9"}}]
    merged, reads, problems = values_from(hr, objs)
    assert merged == {"x": {"a": 1, "b": 2, "c": 3}} and not problems
    assert reads == {("ConfigMap", "ns", "one"), ("Secret", "ns", "two")}
    _, _, problems = values_from({**hr, "spec": {"valuesFrom": [{"kind": "ConfigMap", "name": "missing"}]}}, objs)
    assert problems == ["valuesFrom ConfigMap ns/missing key values.yaml is not in the rendering"]


def test_a_values_file_of_the_configmap_generator_is_proven_on_the_deployment(prover: Prover) -> None:  # noqa: F811
    edits = [edit(FLUX, "apps/staging/webapp-configmap-values.yaml", "cpu: 100m", "cpu: 60m")]
    f = staging(finding("webapp", "webapp-consumer", "consumer", ("resources.requests.cpu", "100m", "60m")))
    proof = prover.prove(FLUX, edits, [f])
    assert proof.ok, proof.lines
    assert proof.lines == ["rendered apps/staging: 1 field changed, as intended"]


def test_values_in_the_shared_base_helmrelease_fail_naming_the_other_environment(prover: Prover) -> None:  # noqa: F811
    edits = [edit(FLUX, "apps/base/webapp/release.yaml", "    web:\n      replicas: 2",
                  "    consumer:\n      resources:\n        requests:\n          cpu: 60m\n    web:\n      replicas: 2")]
    f = staging(finding("webapp", "webapp-consumer", "consumer", ("resources.requests.cpu", "100m", "60m")))
    proof = prover.prove(FLUX, edits, [f])
    assert not proof.ok
    assert "rendered apps/staging: 1 field changed, as intended" in proof.lines
    assert any(line.startswith("rendered apps/production: FAILED: also changes Deployment/webapp/webapp-consumer "
                               "containers[consumer].resources.requests.cpu 250m -> 60m") for line in proof.lines), \
        proof.lines
