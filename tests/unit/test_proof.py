"""The proof's pure parts: object comparison, the judgement of renderings, entry point discovery,
Terraform formatting drift, and the tool resolver's refusal when a renderer is missing."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import pytest

from finops_operator.actuation.entrypoints import EntryPoint, entry_points
from finops_operator.actuation.proof import Prover
from finops_operator.actuation.proofdiff import Intent, ObjectKey, diff, leaf_changes, objects
from finops_operator.actuation.proofjudge import judge
from finops_operator.actuation.proofterraform import new_format_problems
from finops_operator.actuation.rendertools import RenderTools
from finops_operator.errors import ToolMissing
from finops_operator.models import (
    Change,
    EditKind,
    EditTarget,
    FileEdit,
    Finding,
    FindingType,
    Target,
    TargetKind,
    WorkloadRef,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gitops"


def finding(namespace: str, name: str, container: str, *changes: tuple[str, str | None, str | None],
            kind: str = "Deployment") -> Finding:
    ref = WorkloadRef(kind, namespace, name)
    return Finding("cpu-rightsizing", FindingType.RIGHTSIZE_CPU, Target(TargetKind.CONTAINER, container, namespace, ref),
                   "title", [Change(*c) for c in changes], 10.0, 0.9, 0.1, EditTarget(EditKind.CONTAINER_RESOURCES))


def deployment(name: str, namespace: str | None, containers: dict[str, dict]) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    items = "".join(
        f"\n        - name: {c}\n          image: x\n          resources:\n"
        + "".join(f"            {side}:\n" + "".join(f"              {k}: {v}\n" for k, v in vals.items())
                  for side, vals in res.items())
        for c, res in containers.items())
    return f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}{ns}\nspec:\n  template:\n    spec:\n      containers:{items}"


@dataclass
class Rendering:
    entry: EntryPoint
    before_objects: dict
    after_objects: dict
    changes: list = field(default_factory=list)


def rendering(path: str, before: str, after: str, namespace: str | None = None) -> Rendering:
    old, new = objects(before, namespace=namespace), objects(after, namespace=namespace)
    return Rendering(EntryPoint("kustomize", path), old, new, diff(old, new))


API = {"api": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
       "envoy": {"requests": {"cpu": "100m"}}}


def api(namespace: str | None, **override: dict) -> str:
    containers = {k: {s: dict(v) for s, v in res.items()} for k, res in API.items()}
    for container, res in override.items():
        for side, values in res.items():
            containers[container].setdefault(side, {}).update(values)
            for key in [k for k, v in values.items() if v is None]:
                del containers[container][side][key]
    return deployment("api", namespace, containers)


# --------------------------------------------------------------------------- objects and diffs


def test_objects_are_keyed_by_api_version_kind_namespace_and_name_with_a_default_namespace() -> None:
    text = api(None) + "\n---\n" + dedent("""\
        apiVersion: v1
        kind: List
        items:
          - {apiVersion: v1, kind: Service, metadata: {name: api, namespace: other}}
        """)
    keys = set(objects(text, namespace="shop"))
    assert keys == {ObjectKey("apps/v1", "Deployment", "shop", "api"), ObjectKey("v1", "Service", "other", "api")}


def test_containers_are_compared_by_name_so_a_reorder_is_no_change() -> None:
    before = {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}
    after = {"containers": [{"name": "b", "image": "2"}, {"name": "a", "image": "3"}]}
    changes = leaf_changes(before, after)
    assert [(c.dotted, c.before, c.after) for c in changes] == [("containers[a].image", "1", "3")]


# --------------------------------------------------------------------------- the judgement


def test_exactly_the_intended_field_in_the_target_environment_is_proven() -> None:
    f = finding("prod", "api", "api", ("resources.requests.cpu", "500m", "0.25"))
    prod = rendering("overlays/prod", api("prod"), api("prod", api={"requests": {"cpu": "250m"}}))
    dev = rendering("overlays/dev", api("dev"), api("dev"))
    verdict = judge([dev, prod], [Intent.of(f)])
    assert verdict.unproven == {}
    assert verdict.entries[prod.entry.key].line == "rendered overlays/prod: 1 field changed, as intended"
    assert verdict.entries[dev.entry.key].line == "rendered overlays/dev: unchanged"


def test_quantities_are_compared_as_numbers_and_a_removal_is_an_unset_field() -> None:
    f = finding("prod", "api", "api", ("resources.limits.cpu", "1", None), ("resources.requests.memory", "512Mi", "0.5Gi"))
    prod = rendering("p", api("prod"), api("prod", api={"limits": {"cpu": None}}))
    verdict = judge([prod], [Intent.of(f)])
    assert verdict.unproven == {} and verdict.entries[prod.entry.key].problems == []
    assert verdict.entries[prod.entry.key].line == "rendered p: 1 field changed, as intended"


def test_a_change_to_another_container_fails_and_names_it() -> None:
    f = finding("prod", "api", "envoy", ("resources.requests.cpu", "100m", "50m"))
    prod = rendering("overlays/prod", api("prod"), api("prod", api={"requests": {"cpu": "50m"}}))
    verdict = judge([prod], [Intent.of(f)])
    line = verdict.entries[prod.entry.key].line
    assert line.startswith("rendered overlays/prod: FAILED: Deployment/prod/api containers[api].resources.requests.cpu "
                           "500m -> 50m changed, which no finding intends")
    assert verdict.entries[prod.entry.key].owners == {f.id}
    assert "envoy resources.requests.cpu renders 100m, intended 50m" in verdict.unproven[f.id]


def test_a_wrong_value_fails_with_the_intended_one() -> None:
    f = finding("prod", "api", "api", ("resources.requests.cpu", "500m", "250m"))
    prod = rendering("p", api("prod"), api("prod", api={"requests": {"cpu": "300m"}}))
    verdict = judge([prod], [Intent.of(f)])
    assert f.id in verdict.unproven and "renders 300m, intended 250m" in verdict.unproven[f.id]


def test_another_environment_that_changes_fails_unless_shared_edits_are_allowed() -> None:
    f = finding("prod", "api", "api", ("resources.requests.cpu", "500m", "250m"))
    changed = {"api": {"requests": {"cpu": "250m"}}}
    prod = rendering("overlays/prod", api("prod"), api("prod", **changed))
    dev = rendering("overlays/dev", api("dev"), api("dev", **changed))
    strict = judge([dev, prod], [Intent.of(f)])
    assert strict.entries[dev.entry.key].line.startswith(
        "rendered overlays/dev: FAILED: also changes Deployment/dev/api containers[api].resources.requests.cpu "
        "500m -> 250m, an environment this change set does not target")
    assert strict.entries[dev.entry.key].owners == {f.id}
    shared = judge([dev, prod], [Intent.of(f)], allow_shared=True)
    assert shared.entries[dev.entry.key].problems == []
    assert shared.entries[dev.entry.key].line == ("rendered overlays/dev: also changes Deployment/dev/api "
                                                  "containers[api].resources.requests.cpu 500m -> 250m "
                                                  "(shared edit, allowed by policy)")


def test_a_target_no_rendering_deploys_is_unproven() -> None:
    f = finding("prod", "api", "api", ("resources.requests.cpu", "500m", "250m"))
    dev = rendering("overlays/dev", api("dev"), api("dev"))
    verdict = judge([dev], [Intent.of(f)])
    assert verdict.unproven[f.id] == ("proof failed: no entry point that reads the edited files renders "
                                      "Deployment/prod/api (rendered: overlays/dev)")


def test_a_removed_persistent_volume_is_intended_and_any_other_removal_is_not() -> None:
    pv = "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: old}\n---\n"
    svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\n"
    f = Finding("orphan-volumes", FindingType.ORPHAN_VOLUME, Target(TargetKind.VOLUME, "old"), "t",
                [Change("delete", "present", None)], 5.0, 1.0, 0.0, EditTarget(EditKind.PERSISTENT_VOLUME))
    ok = rendering("v.yaml", pv + svc, svc)
    assert judge([ok], [Intent.of(f)]).entries[ok.entry.key].line == "rendered v.yaml: 1 object removed, as intended"
    bad = rendering("v.yaml", pv + svc, "")
    assert "Service/a/s removed, which no finding intends" in judge([bad], [Intent.of(f)]).entries[bad.entry.key].line


# --------------------------------------------------------------------------- entry points


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(dedent(text))
    return root


def labels(entries: list[EntryPoint]) -> list[str]:
    return [f"{e.kind}:{e.label}" for e in entries]


def test_a_base_file_reaches_every_overlay_and_an_overlay_patch_only_its_own() -> None:
    root = FIXTURES / "kustomize"
    assert labels(entry_points(root, {"base/api.yaml"})) == [
        "kustomize:overlays/dev", "kustomize:overlays/prod", "kustomize:overlays/staging"]
    assert labels(entry_points(root, {"overlays/prod/api-resources.yaml"})) == ["kustomize:overlays/prod"]
    assert labels(entry_points(root, {"components/observability/otel-agent.yaml"})) == [
        "kustomize:overlays/prod", "kustomize:overlays/staging"]
    prod = entry_points(root, {"charts/cache/values.yaml"})
    assert labels(prod) == ["kustomize:overlays/prod"] and prod[0].enable_helm


def test_helm_releases_come_from_argo_applications_or_one_per_values_file() -> None:
    argo = entry_points(FIXTURES / "argocd", {"charts/guestbook/values.yaml"})
    assert labels(argo) == ["helm:charts/guestbook (release guestbook, values.yaml, values-dev.yaml)",
                            "helm:charts/guestbook (release guestbook, values.yaml, values-prod.yaml)"]
    assert [e.namespace for e in argo] == ["guestbook-dev", "guestbook"]
    assert argo[1].release.set_values == ("replicaCount=5",)
    chart = entry_points(FIXTURES / "chart", {"shop/values-prod.yaml"})
    assert labels(chart) == ["helm:shop (release shop, values-prod.yaml)"]


def test_plain_manifests_and_terraform_are_their_own_entry_points(tmp_path: Path) -> None:
    write(tmp_path, {"apps/a.yaml": "kind: ConfigMap\n", "infra/main.tf": "", "README.md": "x"})
    assert labels(entry_points(tmp_path, {"apps/a.yaml", "infra/main.tf", "README.md"})) == [
        "manifest:apps/a.yaml", "terraform:infra/main.tf"]


def test_remote_resources_and_paths_leaving_the_repository_are_errors_of_the_entry_point(tmp_path: Path) -> None:
    write(tmp_path, {"overlays/x/kustomization.yaml": """\
        resources:
          - ../../base
          - ../../../elsewhere
          - https://github.com/example/repo//deploy?ref=v1
        """, "base/kustomization.yaml": "resources: [a.yaml]\n", "base/a.yaml": "kind: ConfigMap\n"})
    (entry,) = entry_points(tmp_path, {"base/a.yaml"})
    assert entry.path == "overlays/x"
    assert entry.errors == [
        "overlays/x/kustomization.yaml: resources: ../../../elsewhere leaves the repository; refused",
        "overlays/x/kustomization.yaml: resources: https://github.com/example/repo//deploy?ref=v1 is remote; "
        "the proof renders without network (vendor it into the repository)"]


# --------------------------------------------------------------------------- terraform formatting


def test_an_edit_may_keep_existing_formatting_drift_but_not_add_to_it() -> None:
    before = 'a {\n  x    = 1\n  y = 2\n}\n'
    before_fmt = 'a {\n  x = 1\n  y = 2\n}\n'
    edited = 'a {\n  x    = 3\n  y = 2\n}\n'                 # the odd line was already odd: tolerated
    assert new_format_problems(before, before_fmt, edited, 'a {\n  x = 3\n  y = 2\n}\n') == []
    inserted = 'a {\n  x    = 1\n  y = 2\n  zz= 4\n}\n'     # a new line tofu fmt would rewrite
    assert new_format_problems(before, before_fmt, inserted, 'a {\n  x  = 1\n  y  = 2\n  zz = 4\n}\n') == [3, 4]
    assert new_format_problems(None, None, 'b {\n x=1\n}\n', 'b {\n  x = 1\n}\n') == [2]


# --------------------------------------------------------------------------- missing tools


def test_a_missing_renderer_refuses_the_change_and_says_how_to_install_it(tmp_path: Path) -> None:
    tools = RenderTools({"PATH": str(tmp_path), "FINOPS_TOOLS_DIR": str(tmp_path / "none")})
    with pytest.raises(ToolMissing, match=r"kustomize is needed .*install-render-tools.sh kustomize"):
        tools.find("kustomize")
    with pytest.raises(ToolMissing, match=r"FINOPS_HELM=/nowhere/helm is not an executable file"):
        RenderTools({"FINOPS_HELM": "/nowhere/helm"}).find("helm")
    root = FIXTURES / "kustomize"
    text = (root / "overlays/prod/api-resources.yaml").read_text()
    f = finding("shop-prod", "api", "api", ("resources.requests.cpu", "1", "600m"))
    proof = Prover(tools=tools).prove(root, [FileEdit("overlays/prod/api-resources.yaml", text,
                                                      text.replace('cpu: "1"', "cpu: 600m", 1))], [f])
    assert not proof.ok and "kustomize is needed to prove this change" in proof.failures[f.id]
    assert proof.lines[0].startswith("rendered overlays/prod: refused: kustomize is needed")
