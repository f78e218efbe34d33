"""The GitOps corpus end to end: scan one environment, write its change set, render every environment.

For each fixture (tests/fixtures/gitops/: kustomize, argocd, chart, flux) and each
environment, the cluster state is built from that environment's own rendering
(the workloads the fixture README names, with the resources they run), usage is
set well below the requests, and the real pipeline (detectors, guardrails, edits,
the rendering proof) runs with a DeploySource saying which entry point deploys
them. The change set's edits are written into a copy of the repository and every
environment is rendered again with the pinned kustomize and helm:

* the target environment differs only in the resources fields the written
  findings change, to the values they propose;
* every other environment renders byte-identical.

A missing renderer fails these tests (the ``renderers`` fixture), never skips them.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from finops_operator.actuation.fluxhelm import expand
from finops_operator.actuation.proof import Prover
from finops_operator.actuation.rendertools import RenderTools
from finops_operator.guardrails import GuardrailContext
from finops_operator.models import ContainerRole, DeploySource
from finops_operator.pipeline import ScanResult, scan
from finops_operator.settings import load_policy
from finops_operator.units import parse_cpu, parse_memory
from tests.support.fixtures_detectors import GIB, StateBuilder, app, stats
from tests.support.renderers import GITOPS_FIXTURES, Renderers

NOW = datetime(2024, 6, 15, 12, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Env:
    label: str
    render: Callable[[Renderers, Path], str]
    workloads: tuple[tuple[str, str], ...]          # (kind, name) the scenario names
    source: DeploySource
    namespace: str = "default"                      # where objects without a namespace land


def kustomize(path: str, *, helm: bool = False) -> Callable[[Renderers, Path], str]:
    return lambda r, root: r.kustomize_build(root / path, enable_helm=helm)


def helm(chart: str, release: str, values: tuple[str, ...], namespace: str | None = None):
    return lambda r, root: r.helm_template(root / chart, release=release, namespace=namespace,
                                           values=[root / v for v in values])


KUSTOMIZE = [
    Env("overlays/dev", kustomize("overlays/dev"), (("Deployment", "api"), ("Deployment", "worker")),
        DeploySource("overlays/dev", "policy-paths")),
    Env("overlays/staging", kustomize("overlays/staging"), (("Deployment", "api"), ("Deployment", "worker")),
        DeploySource("overlays/staging", "policy-paths")),
    Env("overlays/prod", kustomize("overlays/prod", helm=True),
        (("Deployment", "api"), ("Deployment", "worker"), ("StatefulSet", "cache")),
        DeploySource("overlays/prod", "policy-paths")),
]
GUESTBOOK = "charts/guestbook"
ARGOCD = [
    Env("guestbook-dev", helm(GUESTBOOK, "guestbook", (f"{GUESTBOOK}/values.yaml", f"{GUESTBOOK}/values-dev.yaml"),
                              "guestbook-dev"), (("Deployment", "guestbook"),),
        DeploySource(GUESTBOOK, "argocd", "helm", (f"{GUESTBOOK}/values.yaml", f"{GUESTBOOK}/values-dev.yaml"),
                     "guestbook"), "guestbook-dev"),
    Env("guestbook-prod", helm(GUESTBOOK, "guestbook", (f"{GUESTBOOK}/values.yaml", f"{GUESTBOOK}/values-prod.yaml"),
                               "guestbook"), (("Deployment", "guestbook"),),
        DeploySource(GUESTBOOK, "argocd", "helm", (f"{GUESTBOOK}/values.yaml", f"{GUESTBOOK}/values-prod.yaml"),
                     "guestbook"), "guestbook"),
    Env("frontend-prod", kustomize("kustomize/frontend/overlays/prod"), (("Deployment", "frontend"),),
        DeploySource("kustomize/frontend/overlays/prod", "argocd"), "frontend"),
]
CHART = [Env(f"shop {env}", helm("shop", "shop", (f"shop/values-{env}.yaml",)),
             (("Deployment", "shop-app"), ("Deployment", "shop-worker"), ("StatefulSet", "shop-redis")),
             DeploySource("shop", "policy-paths", "helm", (f"shop/values-{env}.yaml",), "shop"))
         for env in ("dev", "staging", "prod")]
def flux_apps(path: str) -> Callable[[Renderers, Path], str]:
    """``kustomize build`` of a Flux apps overlay, its HelmReleases rendered as helm-controller would."""
    def render(r: Renderers, root: Path) -> str:
        tools = RenderTools({"FINOPS_HELM": str(r.helm), "PATH": ""})
        return expand(r.kustomize_build(root / path), root, tools)
    return render


FLUX = [Env(f"infrastructure/controllers/{env}", kustomize(f"infrastructure/controllers/{env}"),
            (("Deployment", "cluster-autoscaler"),), DeploySource(f"infrastructure/controllers/{env}", "flux"))
        for env in ("staging", "production")] + [
    Env(f"apps/{env}", flux_apps(f"apps/{env}"), (("Deployment", "webapp-web"), ("Deployment", "webapp-consumer")),
        DeploySource("charts/webapp", "flux", "helm", release="webapp",
                     inline_values=("apps/base/webapp/release.yaml", f"apps/{env}/webapp-values.yaml"),
                     kustomization=f"apps/{env}"), "webapp")
    for env in ("staging", "production")]
CORPUS = {"kustomize": KUSTOMIZE, "argocd": ARGOCD, "chart": CHART, "flux": FLUX}
CASES = [(fixture, env) for fixture, envs in CORPUS.items() for env in envs]


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def pod_containers(doc: dict) -> list[dict]:
    return ((doc.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []


def state_from(rendered: str, env: Env) -> tuple:
    """A ClusterState of the env's named workloads as rendered, each container using 40% of its requests."""
    b = StateBuilder()
    b.node("n-1", cpu=8.0, memory=32 * GIB)
    for doc in docs(rendered):
        key = (doc.get("kind"), doc["metadata"]["name"])
        if key not in env.workloads:
            continue
        namespace = doc["metadata"].get("namespace") or env.namespace
        containers = []
        for c in pod_containers(doc):
            res = c.get("resources") or {}
            req, lim = res.get("requests") or {}, res.get("limits") or {}
            containers.append(app(c["name"], role=ContainerRole.APP, cpu=_s(req.get("cpu")), memory=_s(req.get("memory")),
                                  cpu_limit=_s(lim.get("cpu")), memory_limit=_s(lim.get("memory"))))
        b.workload(key[1], *containers, namespace=namespace, kind=key[0])
        b.state.workloads[-1].source = env.source
        for c in containers:
            b.usage(key[1], c.name, namespace=namespace, kind=key[0],
                    cpu=stats(c.resources.cpu_request * 0.4) if c.resources.cpu_request else None,
                    memory=stats(c.resources.memory_request * 0.45) if c.resources.memory_request else None)
    assert len(b.state.workloads) == len(env.workloads), f"{env.label} does not render {env.workloads}"
    return b.build()


def _s(value) -> str | None:
    return None if value is None else str(value)


def run(renderers: Renderers, fixture: str, env: Env, tmp_path: Path,
        prepare: Callable[[Path], None] | None = None) -> tuple[ScanResult, Path]:
    root = tmp_path / "repo"
    shutil.copytree(GITOPS_FIXTURES / fixture, root)
    if prepare is not None:          # a variant of the fixture
        prepare(root)
    state = state_from(env.render(renderers, root), env)
    tools = RenderTools({"FINOPS_KUSTOMIZE": str(renderers.kustomize), "FINOPS_HELM": str(renderers.helm),
                         "FINOPS_TOFU": str(renderers.tofu), "PATH": ""})
    policy = load_policy({"detectors": {"cpu": {"minMonthlySavings": 0}, "memory": {"minMonthlySavings": 0},
                                        "nodes": {"enabled": False}},
                          "guardrails": {"approvalAboveDollars": 10_000, "maxSingleChangeDollars": 10_000,
                                         "maxSingleChangePercent": 100, "protectedLabels": {},
                                         "maxWorkloadsPerPr": 20}})
    result = scan(state, policy, repo_root=root, prover=Prover(tools=tools), context=GuardrailContext(now=NOW))
    return result, root


def written(result: ScanResult) -> dict[tuple[str, str, str], dict[str, str | None]]:
    """(kind, name, container) -> {field: after} of every finding the change sets write."""
    out: dict[tuple[str, str, str], dict[str, str | None]] = {}
    for cs in result.change_sets:
        for f in cs.findings:
            if f.id in cs.skipped:
                continue
            key = (f.target.workload.kind, f.target.workload.name, f.target.name)
            out.setdefault(key, {}).update({c.field: c.after for c in f.changes})
    return out


def _same(field: str, a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    parse = parse_cpu if field.endswith("cpu") else parse_memory
    return abs(parse(str(a)) - parse(str(b))) < 1e-9


def assert_only_intended(before: str, after: str, intended: dict) -> int:
    """Objects equal except the intended resources fields, which hold the proposed values; fields changed."""
    old = {(d.get("kind"), d["metadata"]["name"]): d for d in docs(before)}
    new = {(d.get("kind"), d["metadata"]["name"]): d for d in docs(after)}
    assert old.keys() == new.keys()
    changed = 0
    for key, doc in old.items():
        assert [c["name"] for c in pod_containers(doc)] == [c["name"] for c in pod_containers(new[key])], \
            f"{key}: the containers' order changed"
        for c_old, c_new in zip(pod_containers(doc), pod_containers(new[key])):
            fields = intended.get((key[0], key[1], c_old["name"]), {})
            for field, value in fields.items():
                section, name = field.split(".")[1:]
                got = ((c_new.get("resources") or {}).get(section) or {}).get(name)
                assert _same(field, got, value), f"{key} {c_old['name']} {field}: {got} != {value}"
                was = ((c_old.get("resources") or {}).get(section) or {}).get(name)
                changed += not _same(field, was, got)
                for c in (c_old, c_new):
                    (c.get("resources") or {}).get(section, {}).pop(name, None)
            for c in (c_old, c_new):
                for section in ("requests", "limits"):
                    if (c.get("resources") or {}).get(section) == {}:
                        del c["resources"][section]
        assert doc == new[key], f"{key} changed outside the intended fields"
    return changed


@pytest.mark.parametrize("fixture, env", CASES, ids=[f"{f}:{e.label}" for f, e in CASES])
def test_only_the_target_environment_changes_and_only_as_intended(renderers, tmp_path, fixture, env):
    check_only_intended(renderers, tmp_path, fixture, env)


def check_only_intended(renderers: Renderers, tmp_path: Path, fixture: str, env: Env,
                        prepare: Callable[[Path], None] | None = None) -> ScanResult:
    """Scan ``env``, write its change sets; the target changes only as intended, the others byte-identical."""
    result, root = run(renderers, fixture, env, tmp_path, prepare)
    intended = written(result)
    assert intended and not result.errors and not any(cs.skipped for cs in result.change_sets), \
        f"{env.label}: errors {result.errors}, skipped {[cs.skipped for cs in result.change_sets]}"
    allowed = {f.id for f in result.findings if result.verdict_of(f).value == "allow"}
    assert allowed == {f.id for cs in result.change_sets for f in cs.findings}, "an allowed finding was not planned"
    after = tmp_path / "after"
    shutil.copytree(root, after)
    for cs in result.change_sets:
        assert cs.proof and all("as intended" in line or "unchanged" in line or "byte" in line
                                for line in cs.proof if env.label.split()[0] in line), cs.proof
        for e in cs.edits:
            if e.after is None:
                (after / e.path).unlink()
            else:
                (after / e.path).parent.mkdir(parents=True, exist_ok=True)
                (after / e.path).write_text(e.after)
    changed = assert_only_intended(env.render(renderers, root), env.render(renderers, after), intended)
    assert changed > 0
    for other in CORPUS[fixture]:
        if other is not env:
            assert other.render(renderers, after) == other.render(renderers, root), \
                f"{other.label} changed by an edit meant for {env.label}"
    return result


def _flux_staging_without_patch(root: Path) -> None:
    """apps/staging patches nothing: web's resources come from the chart's defaults."""
    k = root / "apps/staging/kustomization.yaml"
    k.write_text(k.read_text().replace("patches:\n  - path: webapp-values.yaml\n    target:\n"
                                       "      kind: HelmRelease\n      name: webapp\n", ""))
    (root / "apps/staging/webapp-values.yaml").unlink()


def _flux_resources_in_base(root: Path) -> None:
    """web.resources in the base HelmRelease (shared by both overlays); staging's patch sets only replicas."""
    staging = root / "apps/staging/webapp-values.yaml"
    text = staging.read_text()
    resources = text[text.index("      resources:"):]
    staging.write_text(text[:text.index("      resources:")].replace("    web:\n", "    web:\n      replicas: 3\n"))
    release = root / "apps/base/webapp/release.yaml"
    release.write_text(release.read_text() + resources)


@pytest.mark.parametrize("prepare, new_files, note", [
    (_flux_staging_without_patch, ["apps/staging/finops-values-webapp.yaml", "apps/staging/kustomization.yaml"],
     "added a patch to apps/staging (apps/base/webapp/release.yaml is shared with apps/production; key web.resources)"),
    (_flux_resources_in_base, ["apps/staging/webapp-values.yaml"],
     "edited Kustomize patch apps/staging/webapp-values.yaml (spec.values of HelmRelease webapp); key web.resources"),
], ids=["chart-defaults", "shared-base-values"])
def test_flux_values_set_only_in_shared_layers_go_into_this_overlays_patch(renderers, tmp_path, prepare, new_files,
                                                                          note):
    env = next(e for e in FLUX if e.label == "apps/staging")
    result = check_only_intended(renderers, tmp_path, "flux", env, prepare)
    paths = {e.path for cs in result.change_sets for e in cs.edits}
    assert set(new_files) <= paths and not any(p.startswith(("apps/base", "apps/production", "charts")) for p in paths)
    notes = [n for cs in result.change_sets for ns in cs.notes.values() for n in ns]
    assert note in notes, notes


def test_resources_written_in_a_template_are_refused_with_the_file_and_line(renderers, tmp_path):
    env = Env("shop prod", helm("shop", "shop", ("shop/values-prod.yaml",)),
              (("Deployment", "shop-pgbouncer"), ("Deployment", "shop-app")), CHART[2].source)
    result, root = run(renderers, "chart", env, tmp_path)
    skipped = {f.target.name: cs.skipped[f.id] for cs in result.change_sets for f in cs.findings if f.id in cs.skipped}
    refused = [r for r in list(skipped.values()) + result.errors if "pgbouncer" in r]
    line = (root / "shop/templates/pgbouncer-deployment.yaml").read_text().split("\n").index("          resources:") + 1
    assert refused and all(f"shop/templates/pgbouncer-deployment.yaml:{line}: resources are written in the template, "
                           "not read from values; change the template or add a values key" in r for r in refused)
    assert ("Deployment", "shop-app", "app") in written(result)     # the release's other container is written
    values = [e for cs in result.change_sets for e in cs.edits]
    assert [e.path for e in values] == ["shop/values-prod.yaml"]


@pytest.mark.parametrize("fixture, label, note", [
    ("kustomize", "overlays/dev", "added a patch to overlays/dev (base/ is shared with overlays/prod, overlays/staging)"),
    ("chart", "shop staging", "edited values-staging.yaml (the release's own values file; key app.resources)"),
    ("chart", "shop prod", "edited values-prod.yaml (the release's last values file that sets it; key app.resources)"),
])
def test_reviewer_notes_say_which_layer_was_edited(renderers, tmp_path, fixture, label, note):
    env = next(e for e in CORPUS[fixture] if e.label == label)
    result, _ = run(renderers, fixture, env, tmp_path)
    notes = [n for cs in result.change_sets for ns in cs.notes.values() for n in ns]
    assert note in notes, notes
