"""tests/support/kubeget.get_json reads the apiserver directly and answers exactly as kubectl does."""
from __future__ import annotations

import json

import pytest
from tests.support.controlplane import ControlPlaneError
from tests.support.fixtures_operator import CRDS, CRD_NAMES, wait_established
from tests.support.kubeget import get_json

pytestmark = pytest.mark.integration


def kubectl_json(kube, *args: str):
    return json.loads(kube.kubectl("get", *args, "-o", "json").stdout)


def test_objects_and_lists_are_what_kubectl_prints(kube, kube_namespace):
    kube.kubectl("apply", "-f", str(CRDS))
    wait_established(kube, CRD_NAMES)
    ns = kube_namespace
    for i, team in enumerate(("shop", "shop", "data")):
        kube.kubectl("create", "configmap", f"cm-{i}", "-n", ns, f"--from-literal=n={i}")
        kube.kubectl("label", "configmap", f"cm-{i}", "-n", ns, f"team={team}")
    policy = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
              "metadata": {"name": "p", "namespace": ns, "labels": {"team": "shop"}}, "spec": {"mode": "DryRun"}}
    kube.kubectl("apply", "-f", "-", input=json.dumps(policy))
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "cm-0.1", "namespace": ns},
             "involvedObject": {"kind": "ConfigMap", "name": "cm-0", "namespace": ns}, "reason": "Seen",
             "message": "read by the test", "type": "Normal"}
    kube.kubectl("apply", "-f", "-", input=json.dumps(event))
    for args in (("configmap", "cm-1", "-n", ns), ("cm", "-n", ns, "-l", "team=shop"), ("configmaps", "-n", ns),
                 ("events", "-n", ns, "--field-selector", "involvedObject.name=cm-0"),
                 ("fpol", "p", "-n", ns), ("finopspolicies", "-n", ns, "-l", "team=shop"), ("fsav", "-n", ns),
                 ("lease", "-n", ns)):
        assert get_json(kube, *args) == kubectl_json(kube, *args), args
    assert [i["metadata"]["name"] for i in get_json(kube, "cm", "-n", ns, "-l", "team=shop")["items"]] == \
        ["cm-0", "cm-1"]
    assert [e["reason"] for e in get_json(kube, "events", "-n", ns, "--field-selector", "involvedObject.name=cm-0")
            ["items"]] == ["Seen"]


def test_a_missing_object_fails_and_other_forms_go_to_kubectl(kube, kube_namespace):
    with pytest.raises(ControlPlaneError, match="404"):
        get_json(kube, "fpol", "nothing-here", "-n", kube_namespace)
    everywhere = get_json(kube, "namespaces")          # not a kind the reader knows: kubectl answers
    assert kube_namespace in {i["metadata"]["name"] for i in everywhere["items"]}
