"""Finding where a container's resources live: Kustomize, Helm values, hints, ambiguity, bad files."""
from __future__ import annotations

import pytest

from finops_operator.actuation.edits import plan_edits
from finops_operator.actuation.locate import RepoIndex
from finops_operator.actuation.manifests import resolve_container
from finops_operator.errors import EditError
from tests.support.fixtures_edits import changed_lines, container_finding, edit_for

CPU = "resources.requests.cpu"


# --------------------------------------------------------------------------- Kustomize


def test_example_overlay_patch_that_sets_resources_is_edited_not_the_base(gitops_repo):
    f = container_finding("Deployment", "checkout", "checkout-web", "web", (CPU, "1500m", "600m"))
    result = plan_edits(gitops_repo, [f])
    assert [e.path for e in result.edits] == ["apps/checkout/overlays/production/patch-resources.yaml"]
    assert changed_lines(result.edits[0]) == ["-              cpu: 1500m", "+              cpu: 600m"]
    assert "Kustomize patch" in result.notes[f.id][0]


def test_value_in_a_shared_base_is_changed_by_a_new_patch_in_this_overlay(fixture_repo):
    repo = fixture_repo("kustomize-shared")
    f = container_finding("Deployment", "shop-staging", "shop", "app", (CPU, "200m", "100m"))
    result = plan_edits(repo, [f])
    assert sorted(e.path for e in result.edits) == ["overlays/staging/finops-resources-shop.yaml",
                                                    "overlays/staging/kustomization.yaml"]
    patch = edit_for(result, "overlays/staging/finops-resources-shop.yaml")
    assert patch.before is None and "- name: app" in patch.after and "cpu: 100m" in patch.after
    assert changed_lines(edit_for(result, "overlays/staging/kustomization.yaml")) == [
        "+patches:", "+  - path: finops-resources-shop.yaml"]
    assert result.notes[f.id] == ["added a patch to overlays/staging (base/ is shared with overlays/json, "
                                  "overlays/production)"]


def test_shared_base_is_edited_when_the_policy_allows_and_the_note_names_the_others(fixture_repo):
    repo = fixture_repo("kustomize-shared")
    f = container_finding("Deployment", "shop-staging", "shop", "app", (CPU, "200m", "100m"))
    result = plan_edits(repo, [f], allow_shared=True)
    edit = edit_for(result, "base/deployment.yaml")
    assert changed_lines(edit) == ["-            cpu: 200m", "+            cpu: 100m"]
    assert [e.path for e in result.edits] == ["base/deployment.yaml"]
    assert any("overlays/json, overlays/production also build" in n for n in result.notes[f.id])


def test_production_patch_wins_and_missing_key_is_added_to_the_patch(fixture_repo):
    repo = fixture_repo("kustomize-shared")
    cpu = container_finding("Deployment", "shop", "shop", "app", (CPU, "1", "750m"))
    mem = container_finding("Deployment", "shop", "shop", "app", ("resources.requests.memory", "256Mi", "384Mi"))
    result = plan_edits(repo, [cpu, mem])
    edit = edit_for(result, "overlays/production/resources.yaml")
    assert changed_lines(edit) == ['-            cpu: "1"   # production traffic',
                                   '+            cpu: "750m" # production traffic',
                                   "+            memory: 384Mi"]
    assert [e.path for e in result.edits] == ["overlays/production/resources.yaml"]


def test_json6902_op_that_sets_the_field_is_edited(fixture_repo):
    repo = fixture_repo("kustomize-shared")
    f = container_finding("Deployment", "shop-json", "shop", "app", (CPU, "300m", "100m"))
    result = plan_edits(repo, [f])
    assert [e.path for e in result.edits] == ["overlays/json/json-patch.yaml"]
    assert changed_lines(result.edits[0]) == ["-  value: 300m", "+  value: 100m"]


def test_json6902_op_on_one_field_leaves_the_others_to_an_overlay_patch(fixture_repo):
    repo = fixture_repo("kustomize-shared")
    f = container_finding("Deployment", "shop-json", "shop", "app", (CPU, "300m", "100m"),
                          ("resources.requests.memory", None, "300Mi"))
    result = plan_edits(repo, [f])
    assert sorted(e.path for e in result.edits) == ["overlays/json/finops-resources-shop.yaml",
                                                    "overlays/json/json-patch.yaml",
                                                    "overlays/json/kustomization.yaml"]
    assert "memory: 300Mi" in edit_for(result, "overlays/json/finops-resources-shop.yaml").after


# --------------------------------------------------------------------------- Helm


def test_helm_values_without_hint_picks_the_environment_file_of_the_application(gitops_repo):
    api = container_finding("Deployment", "search", "search-api", "api", (CPU, "2", "800m"))
    indexer = container_finding("StatefulSet", "search", "search-indexer", "indexer",
                                ("resources.limits.cpu", "3", None))
    result = plan_edits(gitops_repo, [api, indexer])
    edit = edit_for(result, "apps/search/chart/values-production.yaml")
    assert changed_lines(edit) == ['-      cpu: "2"', '+      cpu: "800m"', '-      cpu: "3"']
    assert result.locations[api.id] == "apps/search/chart/values-production.yaml:6"
    assert not any("templates" in e.path for e in result.edits)


def test_helm_hint_with_key_path_overrides_the_guess(gitops_repo):
    f = container_finding("Deployment", "search", "search-api", "api", (CPU, "250m", "200m"),
                          hint="apps/search/chart/values.yaml#api.resources")
    edit = edit_for(plan_edits(gitops_repo, [f]), "apps/search/chart/values.yaml")
    assert changed_lines(edit) == ["-      cpu: 250m", "+      cpu: 200m"]


def test_flux_helmrelease_inline_values(fixture_repo):
    repo = fixture_repo("helm-misc")
    f = container_finding("StatefulSet", "cache", "cache-redis-master", "redis",
                          ("resources.requests.memory", "1Gi", "512Mi"))
    edit = edit_for(plan_edits(repo, [f]), "clusters/prod/cache-release.yaml")
    assert changed_lines(edit) == ["-          memory: 1Gi", "+          memory: 512Mi"]


def test_argo_values_object_top_level_resources_of_a_one_workload_chart(fixture_repo):
    repo = fixture_repo("helm-misc")
    f = container_finding("Deployment", "billing", "billing", "billing", ("resources.requests.memory", None, "256Mi"))
    edit = edit_for(plan_edits(repo, [f]), "argocd/billing.yaml")
    assert changed_lines(edit) == ["+            memory: 256Mi"]


def test_helm_values_that_cannot_be_tied_to_the_container_say_so(fixture_repo):
    repo = fixture_repo("helm-misc")
    f = container_finding("Deployment", "apps", "thing", "main", (CPU, "500m", "100m"))
    reason = plan_edits(repo, [f]).skipped[f.id]
    assert reason.startswith("cannot decide which Helm values feed container main")
    assert "charts/generic/values.yaml#resources" in reason and "finops.dev/source" in reason


def test_helm_templates_are_never_parsed(fixture_repo):
    index = RepoIndex(fixture_repo("helm-misc"))
    assert index.errors == {}
    assert not any("templates" in p for p in index.data)


# --------------------------------------------------------------------------- plain YAML shapes


def test_list_kind_items(fixture_repo):
    repo = fixture_repo("plain-misc")
    f = container_finding("Deployment", "tools", "listed", "c", (CPU, "100m", "50m"))
    assert changed_lines(edit_for(plan_edits(repo, [f]), "tools/list.yaml")) == [
        "-              cpu: 100m", "+              cpu: 50m"]


@pytest.mark.parametrize("name, expected", [
    ("limits-only", ["+            requests:", "+              cpu: 100m"]),
    ("empty-flow", ["-          resources: {}", "+          resources: {requests: {cpu: 100m}}"]),
    ("empty-null", ["+            requests:", "+              cpu: 100m"]),
])
def test_adding_requests_to_missing_or_empty_resources(fixture_repo, name, expected):
    repo = fixture_repo("plain-misc")
    f = container_finding("Deployment", "tools", name, "c", (CPU, None, "100m"))
    assert changed_lines(edit_for(plan_edits(repo, [f]), "tools/shapes.yaml")) == expected


def test_new_block_follows_a_four_space_indentation(fixture_repo):
    repo = fixture_repo("plain-misc")
    f = container_finding("DaemonSet", "tools", "agent", "agent", (CPU, None, "20m"))
    assert changed_lines(edit_for(plan_edits(repo, [f]), "tools/four-spaces.yaml")) == [
        "+                resources:", "+                    requests:", "+                        cpu: 20m"]


# --------------------------------------------------------------------------- ambiguity, hints, broken files


def test_ambiguous_workload_lists_the_candidates(fixture_repo):
    repo = fixture_repo("plain-misc")
    f = container_finding("Deployment", "tools", "twin", "c", (CPU, "300m", "100m"))
    reason = plan_edits(repo, [f]).skipped[f.id]
    assert "defined in several places" in reason
    assert "tools/dup-a.yaml" in reason and "tools/dup-b.yaml" in reason


def test_source_hint_picks_one_of_several_definitions(fixture_repo):
    repo = fixture_repo("plain-misc")
    f = container_finding("Deployment", "tools", "twin", "c", (CPU, "300m", "100m"), hint="tools/dup-b.yaml")
    result = plan_edits(repo, [f])
    assert [e.path for e in result.edits] == ["tools/dup-b.yaml"]


def test_hint_to_a_missing_file_is_reported(fixture_repo):
    repo = fixture_repo("plain-misc")
    f = container_finding("Deployment", "tools", "twin", "c", (CPU, "300m", "100m"), hint="tools/nope.yaml")
    assert "points to tools/nope.yaml, which does not exist" in plan_edits(repo, [f]).skipped[f.id]


def test_malformed_yaml_nobody_needs_is_ignored(fixture_repo):
    repo = fixture_repo("plain-misc")
    f = container_finding("Deployment", "tools", "listed", "c", (CPU, "100m", "50m"))
    result = plan_edits(repo, [f])
    assert result.skipped == {} and len(result.edits) == 1


def test_malformed_yaml_a_finding_needs_is_named_with_its_line(fixture_repo):
    repo = fixture_repo("plain-misc")
    f = container_finding("Deployment", "tools", "broken-app", "c", (CPU, "300m", "100m"))
    reason = plan_edits(repo, [f]).skipped[f.id]
    assert "tools/broken.yaml: line 14: malformed YAML" in reason


def test_hint_to_a_malformed_file_raises_edit_error_naming_it(fixture_repo):
    repo = fixture_repo("plain-misc")
    f = container_finding("Deployment", "tools", "broken-app", "c", (CPU, "300m", "100m"), hint="tools/broken.yaml")
    with pytest.raises(EditError) as err:
        resolve_container(RepoIndex(repo), f)
    assert err.value.source == "tools/broken.yaml" and err.value.field == "line 14"


def test_a_container_missing_from_the_overlays_patch_is_added_to_it_in_order(tmp_path):
    import shutil
    from tests.support.renderers import GITOPS_FIXTURES
    repo = tmp_path / "repo"
    shutil.copytree(GITOPS_FIXTURES / "kustomize", repo)
    f = container_finding("Deployment", "shop-dev", "worker", "metrics-exporter", (CPU, "25m", "20m"))
    result = plan_edits(repo, [f])
    assert [e.path for e in result.edits] == ["overlays/dev/worker-resources.yaml"]
    assert changed_lines(result.edits[0]) == ["+        - name: metrics-exporter", "+          resources:",
                                              "+            requests:", "+              cpu: 20m"]


def test_a_json6902_op_on_one_container_does_not_block_the_others(tmp_path):
    import shutil
    from tests.support.renderers import GITOPS_FIXTURES
    repo = tmp_path / "repo"
    shutil.copytree(GITOPS_FIXTURES / "kustomize", repo)
    worker = container_finding("Deployment", "shop-staging", "worker", "worker", (CPU, "200m", "150m"))
    exporter = container_finding("Deployment", "shop-staging", "worker", "metrics-exporter", (CPU, "25m", "20m"))
    result = plan_edits(repo, [worker, exporter])
    assert result.skipped == {}
    json_edit = edit_for(result, "overlays/staging/worker-json6902.json")
    assert changed_lines(json_edit) == [
        '-  {"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu", "value": "200m"},',
        '+  {"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu", "value": "150m"},']
    patch = edit_for(result, "overlays/staging/finops-resources-worker.yaml").after
    assert "- name: worker\n" in patch and "- name: metrics-exporter" in patch and "cpu: 20m" in patch


def test_inline_json6902_op_in_the_kustomization_is_edited_in_place(tmp_path):
    import shutil
    from tests.support.renderers import GITOPS_FIXTURES
    repo = tmp_path / "repo"
    shutil.copytree(GITOPS_FIXTURES / "kustomize", repo)
    f = container_finding("Deployment", "shop-prod", "api", "envoy", (CPU, "250m", "200m"),
                          ("resources.limits.cpu", "500m", "400m"))
    result = plan_edits(repo, [f])
    assert [e.path for e in result.edits] == ["overlays/prod/kustomization.yaml"]
    assert changed_lines(result.edits[0]) == ["-        value: 250m", "+        value: 200m",
                                              "-        value: 500m", "+        value: 400m"]
