"""The chart grants exactly the RBAC the code declares (defect 15: least privilege, no drift).

Each I/O module declares the calls it makes (``PERMISSIONS`` tables of
``finops_operator.permissions.Rule``: sources/kubernetes.py, api/store.py,
api/wiring.py, api/events.py, api/coordination.py, and handlers/ for kopf's own
needs). ``helm template`` renders the chart's ClusterRole and Roles with the real
helm binary; both sides are expanded to (scope, group, resource, verb) and must be
equal: a grant no code uses fails, and so does a call the chart does not allow.
That the declared rules are enough is proven by the operator's end-to-end tests,
which run ``finops run`` as the chart's ServiceAccount (tests/e2e/test_operator.py,
tests/e2e/test_operator_replicas.py, tests/integration/test_rbac_operator.py).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from finops_operator.permissions import grants, required
from finops_operator.sources import kubernetes as kube_source

from tests.support.kubeprocs import tools_dir

pytestmark = pytest.mark.integration
CHART = Path(__file__).resolve().parents[2] / "charts" / "finops-operator"
NAMESPACE = "finops-system"


def render(*sets: str) -> list[dict]:
    helm = tools_dir() / "bin" / "helm"
    if not helm.exists():
        pytest.fail(f"{helm} is missing: run `make tools`", pytrace=False)
    args = [str(helm), "template", "finops", str(CHART), "-n", NAMESPACE, "--set", "clusterName=rbac",
            "--set", "git.tokenSecret.name=gh-token", "--set", "rbac.secretRefs[0].namespace=team",
            "--set", "rbac.secretRefs[0].name=team-token", "--set", "rbac.configMapRefs[0].namespace=onprem",
            "--set", "rbac.configMapRefs[0].name=node-prices"]
    for value in sets:
        args += ["--set", value]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d and d["kind"] in ("ClusterRole", "Role")]


def chart_grants(docs: list[dict]) -> set[tuple[str, str, str, str]]:
    """The operator's own roles (not the aggregated user roles) as (scope, group, resource, verb)."""
    out = set()
    for doc in docs:
        labels = doc["metadata"].get("labels") or {}
        if any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in labels):
            continue
        for rule in doc["rules"]:
            if doc["kind"] == "ClusterRole":
                scope = "cluster"
            elif rule["resources"] == ["secrets"]:
                assert rule.get("resourceNames"), f"{doc['metadata']['name']}: Secrets only by name"
                scope = "named-secret"
            elif rule["resources"] == ["configmaps"]:
                assert rule.get("resourceNames"), f"{doc['metadata']['name']}: ConfigMaps only by name"
                scope = "named-configmap"
            else:
                assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]
                scope = "operator-namespace"
            out |= {(scope, group, resource, verb) for group in rule["apiGroups"] for resource in rule["resources"]
                    for verb in rule["verbs"]}
    return out


def describe(items: set[tuple[str, str, str, str]]) -> list[str]:
    return sorted(f"{verb} {resource}.{group or 'core'} ({scope})" for scope, group, resource, verb in items)


@pytest.mark.parametrize("peering", [False, True], ids=["standalone", "peering"])
def test_the_chart_grants_exactly_what_the_code_declares(peering):
    docs = render(f"peering.enabled={str(peering).lower()}")
    declared = grants(required(when=frozenset({"peering.enabled"}) if peering else frozenset()))
    granted = chart_grants(docs)
    assert describe(granted - declared) == [], "granted, but no code declares it needs it (remove it from rbac.yaml)"
    assert describe(declared - granted) == [], "declared by the code, but the chart does not grant it"


def test_every_kind_the_inventory_lists_declares_its_rbac():
    assert kube_source._RESOURCES.keys() == kube_source._LISTS.keys()
    custom = {kube_source.NODE_POOLS[2]} | {plural for _, _, plural in kube_source._CONTROLLERS.values()}
    assert {r.resource for r in kube_source.PERMISSIONS} == {res for _, res in kube_source._RESOURCES.values()} | custom

