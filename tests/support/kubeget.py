"""``kubectl get ... -o json`` answered by one HTTPS GET to the test apiserver.

The e2e tests poll the apiserver while the operator works (the crash test every 10-20 ms). Each
kubectl is a Go process costing about 65 ms of CPU, which the operator under test then lacks; a
direct GET costs about 3 ms. :func:`get_json` understands the argument forms the tests use (a kind
by any of its kubectl names, an optional object name, ``-n``, ``-l``, ``--field-selector``) and
leaves anything else to kubectl. Its answers have kubectl's shape: a list is ``kind: List`` with
each item's ``apiVersion`` and ``kind`` set.

Only the crash test uses it so far. A read this fast can land between the two requests in which kopf
writes a status and an annotation (test_operator's retry annotation did, under pytest-xdist), so a
test moving to it must wait for everything it then reads, not for one of the two.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml

CRDS = Path(__file__).resolve().parents[2] / "crds"
# The built-in kinds the tests read: kubectl names -> (API prefix, plural, kind).
CORE = {("configmap", "configmaps", "cm"): ("/api/v1", "configmaps", "ConfigMap"),
        ("event", "events", "ev"): ("/api/v1", "events", "Event"),
        ("lease", "leases"): ("/apis/coordination.k8s.io/v1", "leases", "Lease")}


@functools.cache
def resources() -> dict[str, tuple[str, str, str]]:
    """Every kubectl name of the core kinds above and of our CRDs (plural, singular, short names)."""
    out = {name: res for names, res in CORE.items() for name in names}
    for path in sorted(CRDS.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())["spec"]
        names = spec["names"]
        version = next(v["name"] for v in spec["versions"] if v.get("storage"))
        res = (f"/apis/{spec['group']}/{version}", names["plural"], names["kind"])
        for name in (names["plural"], names.get("singular") or names["kind"].lower(), *names.get("shortNames", [])):
            out[name] = res
    return out


def rest_request(args: tuple[str, ...]) -> tuple[str, bool] | None:
    """(path with query, is a list) for ``kubectl get <args>``, or None when kubectl should answer."""
    rest = list(args)
    res = resources().get(rest.pop(0).lower()) if rest else None
    if res is None:
        return None
    name = namespace = None
    query: dict[str, str] = {}
    options = {"-n": "namespace", "--namespace": "namespace", "-l": "labelSelector", "--selector": "labelSelector",
               "--field-selector": "fieldSelector"}
    while rest:
        arg = rest.pop(0)
        if arg in options and rest:
            value = rest.pop(0)
            if options[arg] == "namespace":
                namespace = value
            else:
                query[options[arg]] = value
        elif not arg.startswith("-") and name is None:
            name = arg
        else:
            return None
    if namespace is None or (name and query):    # the kubeconfig's namespace, or a form kubectl refuses
        return None
    prefix, plural, _ = res
    path = f"{prefix}/namespaces/{quote(namespace)}/{plural}" + (f"/{quote(name)}" if name else "")
    return path + (f"?{urlencode(query)}" if query else ""), name is None


def as_kubectl(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as kubectl prints it: without ``metadata.managedFields`` (``--show-managed-fields``)."""
    obj.get("metadata", {}).pop("managedFields", None)
    return obj


def as_kubectl_list(answer: dict[str, Any]) -> dict[str, Any]:
    """A typed list from the API (``ConfigMapList``) in kubectl's shape: ``List``, items with their kind."""
    kind = answer.get("kind", "").removesuffix("List")
    items = [as_kubectl({"apiVersion": answer.get("apiVersion"), "kind": kind, **item})
             for item in answer.get("items", [])]
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def get_json(kube, *args: str) -> Any:
    """``kubectl get <args> -o json``, read straight from the apiserver where the arguments allow."""
    request = rest_request(args)
    if request is None:
        return json.loads(kube.kubectl("get", *args, "-o", "json").stdout)
    path, is_list = request
    answer = kube.api_get(path)
    return as_kubectl_list(answer) if is_list else as_kubectl(answer)
