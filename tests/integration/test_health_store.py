"""The team health history ConfigMap on a real kube-apiserver: created, owned by its FinOpsPolicy, read back by
a new client (a restarted operator knows which teams already ran today), a stale write is a conflict, and an
unreadable blob starts afresh instead of failing."""
from __future__ import annotations

import base64
import json
from datetime import date
from pathlib import Path

import pytest
from finops_operator.api.healthstore import HealthConflict, HealthOwner, HealthStore, StoredHealth
from finops_operator.api.wiring import api_client_from
from finops_operator.health.history import HealthHistory, ran, record

from tests.support.fixtures_operator import wait_established

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 30)


@pytest.fixture(scope="module")
def crds(kube):
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    wait_established(kube, ("finopspolicies.finops.dev",))
    return kube


def test_history_round_trips_is_owned_and_written_at_the_version_read(crds, kube_namespace):
    ns = kube_namespace
    policy = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy", "metadata": {"name": "p", "namespace": ns},
              "spec": {"mode": "DryRun", "health": {"teams": [{"name": "payments", "timeZone": "Europe/Berlin"}]}}}
    crds.kubectl("apply", "-f", "-", input=json.dumps(policy))
    uid = json.loads(crds.kubectl("get", "finopspolicy/p", "-n", ns, "-o", "json").stdout)["metadata"]["uid"]
    owner = HealthOwner(ns, "p", uid)
    api = api_client_from(str(crds.kubeconfig))
    try:
        store = HealthStore(api)
        assert store.load(owner).resource_version is None
        store.update(owner, lambda h: ran(record(h, "team:payments", DAY, 71.5), "payments", DAY))
        stale = store.load(owner)
        store.update(owner, lambda h: record(h, "namespace:shop", DAY, 40.0))
        with pytest.raises(HealthConflict):
            store.save(owner, stale, HealthHistory())
    finally:
        api.close()
    api = api_client_from(str(crds.kubeconfig))                      # a restarted operator
    try:
        again = HealthStore(api).load(owner)
    finally:
        api.close()
    assert again.history.last_run == {"payments": DAY}
    assert again.history.scores == {"team:payments": {DAY: 71.5}, "namespace:shop": {DAY: 40.0}}
    cm = json.loads(crds.kubectl("get", "configmap/finops-health-p", "-n", ns, "-o", "json").stdout)
    assert cm["metadata"]["ownerReferences"][0]["uid"] == uid


def test_an_unreadable_history_starts_afresh(crds, kube_namespace):
    ns = kube_namespace
    owner = HealthOwner(ns, "q")
    junk = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": owner.config_map, "namespace": ns},
            "binaryData": {"health.json.gz": base64.b64encode(b"not gzip at all").decode()}}
    crds.kubectl("apply", "-f", "-", input=json.dumps(junk))
    api = api_client_from(str(crds.kubeconfig))
    try:
        store = HealthStore(api)
        loaded = store.load(owner)
        assert loaded.history == HealthHistory() and "unreadable" in loaded.problem
        store.save(owner, loaded, ran(HealthHistory(), "t", DAY))
        assert store.load(owner).history.last_run == {"t": DAY}
    finally:
        api.close()
