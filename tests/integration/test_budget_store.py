"""A Budget's history ConfigMap and status on a real kube-apiserver: backfilled once, owned by the Budget,
written at the resourceVersion read, and a restarted operator (new client, state only from the API)
reads no final day again and fires nothing twice.

The day reader stands in for Prometheus/Cost Explorer (their own integration tests cover them): it
records which days it was asked for, which is what this test is about.
"""
from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from finops_operator.api.budget import read_budget
from finops_operator.api.budgetrun import BACKFILL_DAYS, evaluate_budget
from finops_operator.api.events import post_event
from finops_operator.api.spendstore import HistoryConflict, SpendStore, config_map_name
from finops_operator.api.wiring import api_client_from
from finops_operator.budgets.history import merge

from tests.support.fixtures_operator import wait_established

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 16, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def crds(kube):
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    wait_established(kube, ("budgets.finops.dev",))
    return kube


def get(kube, *args) -> dict:
    return json.loads(kube.kubectl("get", *args, "-o", "json").stdout)


class Reader:
    def __init__(self, daily: float) -> None:
        self.daily, self.asked = daily, []

    def __call__(self, days: list[date]) -> dict[date, float]:
        self.asked.append(sorted(days))
        return {d: self.daily for d in days}


def evaluate_once(kube, ns: str, reader: Reader, now: datetime, fired: list):
    """What the timer does, with a fresh client and everything else read from the API (a restarted operator)."""
    api = api_client_from(str(kube.kubeconfig))
    try:
        body = get(kube, "budget/team-monthly", "-n", ns)
        budget = read_budget(body)
        return evaluate_budget(
            budget, api, status=body.get("status"), now=now, read_days=lambda: reader,
            run_action=lambda b, c, r: fired.append(c.threshold.id) or "recorded",
            post=lambda t, reason, m: post_event(api, body, type_=t, reason=reason, message=m, now=now))
    finally:
        api.close()


def test_history_and_status_survive_a_restart_and_nothing_fires_twice(crds, kube_namespace):
    ns = kube_namespace
    doc = {"apiVersion": "finops.dev/v1alpha1", "kind": "Budget", "metadata": {"name": "team-monthly", "namespace": ns},
           "spec": {"amount": "1000", "timeZone": "Europe/Berlin",
                    "thresholds": [{"percent": 50, "action": "Notify"}, {"percent": 100, "action": "Alert"}]}}
    crds.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    reader, fired = Reader(40.0), []

    first = evaluate_once(crds, ns, reader, NOW, fired)
    assert first.error is None and fired == ["50"]
    assert len(reader.asked) == 1 and len(reader.asked[0]) == BACKFILL_DAYS + 1        # backfilled once
    cm = get(crds, "configmap", config_map_name("team-monthly"), "-n", ns)
    owner = cm["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Budget", "team-monthly")
    assert owner["uid"] == get(crds, "budget/team-monthly", "-n", ns)["metadata"]["uid"]
    status = get(crds, "budget/team-monthly", "-n", ns)["status"]
    assert status["state"] == "ForecastExceeded" and status["currentSpend"] == "640.00" and status["usedPercent"] == 64
    assert status["forecastedSpend"] == "1240.00" and status["forecastMethod"]
    assert [t["percent"] for t in status["triggeredThresholds"]] == [50]
    assert [e["type"] for e in status["events"]] == ["ThresholdCrossed", "ActionTaken"]

    # restarted: a new client, the memory only from the API; later the same day, then after a dip and return
    for minutes in (15, 30):
        again = evaluate_once(crds, ns, reader, NOW + timedelta(minutes=minutes), fired)
        assert again.error is None and again.result.crossings == []
    assert fired == ["50"]
    assert all(len(days) <= 2 for days in reader.asked[1:])             # only the open days: yesterday, today

    # 100% crosses later in the month: it fires, once
    reader.daily = 80.0
    for hours in (24 * 5, 24 * 5 + 1):
        evaluate_once(crds, ns, reader, NOW + timedelta(hours=hours), fired)
    assert fired == ["50", "100"]
    status = get(crds, "budget/team-monthly", "-n", ns)["status"]
    assert status["state"] == "Exceeded" and [t["percent"] for t in status["triggeredThresholds"]] == [50, 100]
    events = get(crds, "events", "-n", ns)["items"]
    crossed = [e for e in events if e["reason"] == "ThresholdCrossed"]
    assert len(crossed) == 2 and {e["type"] for e in crossed} == {"Normal", "Warning"}

    table = crds.kubectl("get", "budgets", "-n", ns).stdout
    assert "STATE" in table.splitlines()[0] and "Exceeded" in table

    # a new period: what fired is forgotten, the 50% threshold fires again
    evaluate_once(crds, ns, reader, datetime(2026, 4, 20, 12, tzinfo=UTC), fired)
    assert fired == ["50", "100", "50", "100"]
    assert get(crds, "budget/team-monthly", "-n", ns)["status"]["period"] == "2026-04-01/Monthly"


def test_a_write_at_a_stale_resource_version_is_a_conflict(crds, kube_namespace):
    ns = kube_namespace
    doc = {"apiVersion": "finops.dev/v1alpha1", "kind": "Budget", "metadata": {"name": "b", "namespace": ns},
           "spec": {"amount": "10"}}
    crds.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    budget = read_budget(get(crds, "budget/b", "-n", ns))
    api = api_client_from(str(crds.kubeconfig))
    try:
        store = SpendStore(api)
        empty = store.load(budget)
        assert empty.resource_version is None
        store.save(budget, empty, merge(empty.history, {date(2026, 3, 1): 1.0}, date(2026, 3, 1),
                                        complete=date(2026, 3, 1)))
        read = store.load(budget)
        store.save(budget, read, merge(read.history, {date(2026, 3, 2): 2.0}, date(2026, 3, 2),
                                       complete=date(2026, 3, 2)))
        with pytest.raises(HistoryConflict):           # `read` is stale now
            store.save(budget, read, read.history)
        updated = store.update(budget, lambda h: merge(h, {date(2026, 3, 3): 3.0}, date(2026, 3, 3),
                                                       complete=date(2026, 3, 3)))
        assert store.load(budget).history.series.total() == updated.series.total() == 6.0
    finally:
        api.close()


def test_a_freeze_is_remembered_then_released_once_in_a_later_period_under_the_threshold(crds, kube_namespace):
    """FreezeGrowth fires in March (status.freezes keeps its period); April under the line: a failing release
    is kept and retried, the next one posts FreezeReleased and forgets it; nothing is released twice."""
    ns = kube_namespace
    doc = {"apiVersion": "finops.dev/v1alpha1", "kind": "Budget", "metadata": {"name": "team-monthly", "namespace": ns},
           "spec": {"amount": "1000", "scope": {"namespaces": ["shop"]},
                    "thresholds": [{"percent": 100, "action": "FreezeGrowth"}]}}
    crds.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    reader, fired, released = Reader(80.0), [], []
    answers = iter([RuntimeError("GitHub is down"), "closed PR #7", "closed PR #8"])

    def release(budget, freeze, result):
        released.append((freeze.threshold, freeze.period, result.period.key))
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def once(now: datetime):
        api = api_client_from(str(crds.kubeconfig))
        try:
            body = get(crds, "budget/team-monthly", "-n", ns)
            return evaluate_budget(read_budget(body), api, status=body.get("status"), now=now,
                                   read_days=lambda: reader, release=release,
                                   run_action=lambda b, c, r: fired.append(c.threshold.id) or "opened PR #7",
                                   post=lambda t, reason, m: post_event(api, body, type_=t, reason=reason, message=m,
                                                                        now=now))
        finally:
            api.close()

    once(NOW)                                                  # March 16: 16 x 80 USD, over 1000
    assert fired == ["100"] and released == []
    march = get(crds, "budget/team-monthly", "-n", ns)["status"]
    assert [(f["threshold"], f["period"]) for f in march["freezes"]] == [("100", march["period"])]
    once(NOW + timedelta(days=1))                              # the same period: nothing to release
    assert released == []

    reader.daily = 10.0
    april = datetime(2026, 4, 3, 12, tzinfo=UTC)
    once(april)                                                # the release fails: kept
    assert released == [("100", march["period"], "2026-04-01/Monthly")]
    assert get(crds, "budget/team-monthly", "-n", ns)["status"]["freezes"] != []
    once(april + timedelta(hours=1))                           # retried: released and forgotten
    status = get(crds, "budget/team-monthly", "-n", ns)["status"]
    assert len(released) == 2 and status["freezes"] == []
    assert "closed PR #7" in status["events"][-1]["message"] and status["events"][-1]["type"] == "ActionTaken"
    once(april + timedelta(hours=2))                           # a restart reads the status: nothing again
    assert len(released) == 2 and fired == ["100"]
    events = [e for e in get(crds, "events", "-n", ns)["items"] if e["reason"] == "FreezeReleased"]
    assert len(events) == 1 and "closed PR #7" in events[0]["message"]


def test_a_high_anomaly_is_queued_once_for_the_subscribed_channels_and_a_broken_route_fails_nothing(
        crds, kube_namespace, caplog):
    from finops_operator.api.notifycluster import channel
    from finops_operator.api.notifystore import QueueStore
    from finops_operator.models.spend import Anomaly, AnomalyKind, Severity
    ns = kube_namespace
    wait_established(crds, ("notificationchannels.finops.dev", "notificationsubscriptions.finops.dev"))
    docs = [{"apiVersion": "finops.dev/v1alpha1", "kind": "Budget", "metadata": {"name": "team-monthly"},
             "spec": {"amount": "100000", "thresholds": [{"percent": 100, "action": "Alert"}]}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook"},
             "stringData": {"url": "https://hooks.example.test/services/T0/B0/x"}},
            {"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationChannel", "metadata": {"name": "ops"},
             "spec": {"type": "Slack", "secretRef": {"name": "hook"}}},
            {"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationSubscription", "metadata": {"name": "eng"},
             "spec": {"persona": "engineer", "channels": [{"name": "ops", "minPriority": "High"}]}},
            {"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationSubscription", "metadata": {"name": "fin"},
             "spec": {"persona": "finance", "channels": [{"name": "ops"}]}}]
    for doc in docs:
        doc["metadata"]["namespace"] = ns
    crds.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    spike = Anomaly(date(2026, 3, 10), date(2026, 3, 11), Severity.HIGH, AnomalyKind.SPIKE, 40.0, 160.0,
                    driver="namespace search")
    small = Anomaly(date(2026, 3, 13), date(2026, 3, 13), Severity.LOW, AnomalyKind.DIP, 40.0, 30.0)

    def once(now: datetime):
        api = api_client_from(str(crds.kubeconfig))
        try:
            body = get(crds, "budget/team-monthly", "-n", ns)
            return evaluate_budget(read_budget(body), api, status=body.get("status"), now=now,
                                   read_days=lambda: Reader(40.0), anomalies=[spike, small])
        finally:
            api.close()

    first = once(NOW)
    assert first.error is None and [e[1] for e in first.events] == ["AnomalyFound", "AnomalyFound"]
    api = api_client_from(str(crds.kubeconfig))
    try:
        pending = QueueStore(api).load(channel(api, ns, "ops"))[0].pending
    finally:
        api.close()
    # engineer and finance both route to ops: one id (the episode), so the channel gets it once
    assert [(i.id, i.priority.value) for i in pending] == [(f"anomaly:{ns}/team-monthly:2026-03-10", "critical")]
    assert pending[0].subscription in (f"{ns}/eng", f"{ns}/fin")
    assert "namespace search" in pending[0].text

    again = once(NOW + timedelta(minutes=15))                        # reported once: nothing new queued
    assert again.error is None and again.events == []
    crds.kubectl("delete", "notificationchannel", "ops", "-n", ns)   # a subscription now routes to nothing
    crds.kubectl("patch", "budget", "team-monthly", "-n", ns, "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": {"events": [], "period": None}}))
    caplog.set_level("WARNING")
    broken = once(NOW + timedelta(minutes=30))
    assert broken.error is None and broken.result is not None
    assert "anomaly insights not queued for delivery" in caplog.text
