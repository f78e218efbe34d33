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


def test_the_daily_job_queues_the_teams_insights_and_a_restart_the_same_day_reruns_nothing(crds, kube_namespace):
    """run_daily on the real apiserver: the health ConfigMap, a NotificationChannel's queue, a second process."""
    from datetime import UTC, datetime

    import yaml
    from finops_operator.api.healthjob import channel_delivery, run_daily
    from finops_operator.api.notifycluster import channel
    from finops_operator.api.notifystore import QueueStore
    from finops_operator.health import HealthData, HealthSettings
    from finops_operator.models.insights import Category, Insight, Persona, Priority

    ns = kube_namespace
    wait_established(crds, ("notificationchannels.finops.dev", "notificationsubscriptions.finops.dev"))
    docs = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook", "namespace": ns},
             "stringData": {"url": "http://127.0.0.1:9/hook"}},
            {"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationChannel",
             "metadata": {"name": "ops", "namespace": ns}, "spec": {"type": "Webhook", "secretRef": {"name": "hook"}}},
            {"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationSubscription",
             "metadata": {"name": "eng", "namespace": ns},
             "spec": {"persona": "engineer", "channels": [{"name": "ops", "minPriority": "Low"}]}}]
    crds.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    settings = HealthSettings.model_validate({"teams": [{"name": "payments", "timeZone": "Europe/Berlin"}]})
    owner = HealthOwner(ns, "p")
    now = datetime(2026, 11, 30, 5, 30, tzinfo=UTC)                        # 06:30 in Berlin
    made = [Insight("eng-1", Persona.ENGINEER, "shop/api requests 4x what it uses", "cpu", Priority.CRITICAL,
                    Category.EFFICIENCY, team="payments")]

    def once():
        api = api_client_from(str(crds.kubeconfig))                        # a fresh process each time
        try:
            return run_daily(HealthStore(api), owner, HealthData(), settings, now,
                             insights=lambda d, team, s: made, deliver=channel_delivery(api, ns, now))
        finally:
            api.close()

    [run] = once()
    assert (run.team, run.outcome, run.insights, run.alerts) == ("payments", "ok", 1, 1)
    assert once() == []                                                     # restarted the same day: nothing reruns
    api = api_client_from(str(crds.kubeconfig))
    try:
        queue = QueueStore(api).load(channel(api, ns, "ops"))[0]
        stored = HealthStore(api).load(owner).history
    finally:
        api.close()
    assert [item.id for item in queue.pending] == ["eng-1"]
    assert stored.last_run == {"payments": DAY} and stored.insights["payments"][0].id == "eng-1"
