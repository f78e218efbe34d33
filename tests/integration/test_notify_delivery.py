"""Delivery on a real kube-apiserver: a channel, its Secret and a subscription applied with kubectl; insights
routed and queued in the channel's ConfigMap; a restart mid-batch (the process dies after recording
"sending", a new client and store read only the ConfigMap) loses and duplicates nothing; a Budget's Alert
is queued to its spec.notifications channel; the Secret's value is never in status, events or logs.

The transport is a recording stand-in for part 2's notify/ (its own tests run the services' emulators).
"""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from finops_operator.api.budget import read_budget
from finops_operator.api.budgetactions import deliver
from finops_operator.api.notifycluster import channel, enqueue_insights, subscriptions
from finops_operator.api.notifyrun import DeliveryFailed, channel_status, credentials, flush, flush_channel
from finops_operator.api.notifystore import QueueStore, config_map_name
from finops_operator.api.wiring import api_client_from
from finops_operator.budgets import Crossing, ThresholdRule
from finops_operator.cli.main import main
from finops_operator.delivery.model import Outcome
from finops_operator.models.insights import Category, Insight, Persona, Priority

from tests.support.fixtures_operator import wait_established

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 16, 12, tzinfo=UTC)
SECRET_URL = "https://hooks.example.test/services/T000/B000/s3cr3t-TOKEN-xyz"


class Crash(BaseException):
    """The process dies (not an Exception: nothing in the operator catches it)."""


class Recorder:
    """Stands in for notify.send: records what arrived; crashes after ``crash_after`` messages arrived."""

    def __init__(self, *, idempotent: bool, crash_after: int | None = None, arrived: list | None = None) -> None:
        self.idempotent, self.crash_after = idempotent, crash_after
        self.arrived: list = arrived if arrived is not None else []      # the service's side: survives us

    def send(self, messages) -> None:
        for m in messages:
            if self.idempotent and m.dedup_key in {a.dedup_key for a in self.arrived}:
                continue                                     # the service drops a repeated dedup key
            self.arrived.append(m)
        if self.crash_after is not None and len(self.arrived) >= self.crash_after:
            raise Crash()


@pytest.fixture(scope="module")
def crds(kube):
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    wait_established(kube, ("notificationchannels.finops.dev", "notificationsubscriptions.finops.dev",
                            "budgets.finops.dev"))
    return kube


def apply(kube, ns: str, *docs: dict) -> None:
    for doc in docs:
        doc["metadata"]["namespace"] = ns
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def get(kube, *args) -> dict:
    return json.loads(kube.kubectl("get", *args, "-o", "json").stdout)


def setup(kube, ns: str, channel_type: str = "Webhook") -> None:
    apply(kube, ns,
          {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook"}, "stringData": {"url": SECRET_URL}},
          {"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationChannel", "metadata": {"name": "ops"},
           "spec": {"type": channel_type, "secretRef": {"name": "hook"}}},
          {"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationSubscription", "metadata": {"name": "cfo"},
           "spec": {"persona": "cfo", "recipients": ["cfo@example.test"],
                    "channels": [{"name": "ops", "minPriority": "Low"}],
                    "batching": {"size": 2, "intervalSeconds": 600}, "rateLimitPerHour": 20,
                    "quietHours": {"start": "22:00", "end": "07:00", "timeZone": "Europe/Berlin"}}})


def insights(n: int, priority: Priority = Priority.LOW) -> list[Insight]:
    return [Insight(f"cfo-{k}", Persona.CFO, f"Spend trend {k}", "up 12% month over month", priority,
                    Category.COST_OPTIMIZATION) for k in range(n)]


def fresh(kube, ns: str):
    """A restarted operator: a new client; channel, subscriptions and queue only from the API."""
    api = api_client_from(str(kube.kubeconfig))
    return api, channel(api, ns, "ops"), subscriptions(api, ns), QueueStore(api)


@pytest.mark.parametrize("channel_type", ["Webhook", "Slack"])
def test_restart_mid_batch_loses_and_duplicates_nothing(crds, kube_namespace, channel_type, caplog, capsys):
    ns = kube_namespace
    setup(crds, ns, channel_type)
    caplog.set_level(logging.DEBUG)
    api, ch, subs, store = fresh(crds, ns)
    assert [s.name for s in subs] == [f"{ns}/cfo"] and subs[0].batch_size == 2
    assert credentials(api, ch) == {"url": SECRET_URL}
    assert enqueue_insights(api, ns, insights(6), NOW) == 6
    assert enqueue_insights(api, ns, insights(6), NOW) == 0                     # dedup across calls
    cm = get(crds, "configmap", config_map_name("ops"), "-n", ns)
    assert cm["metadata"]["ownerReferences"][0]["kind"] == "NotificationChannel"

    arrived: list = []
    idempotent = channel_type == "Webhook"
    with pytest.raises(Crash):                       # three digests of two; dies after the second arrived
        flush(store, ch, subs, Recorder(idempotent=idempotent, crash_after=2, arrived=arrived), NOW)
    api.close()
    stored = store.load(ch)[0]
    assert len(stored.sending) == 1 and len(stored.pending) == 2                # the ConfigMap knows

    api, ch, subs, store = fresh(crds, ns)
    result = flush(store, ch, subs, Recorder(idempotent=idempotent, arrived=arrived), NOW + timedelta(minutes=1))
    api.close()
    ids = [i for m in arrived for i in m.item_ids]
    assert sorted(ids) == sorted(set(ids))                                       # nothing twice
    state = result.state
    assert not state.pending and not state.sending
    accounted = {k.split("|")[1] for k, _ in state.sent}
    assert accounted == {f"cfo-{k}" for k in range(6)}                           # nothing lost
    assert state.stats.total(Outcome.SENT) == 6 - (0 if idempotent else 2)
    assert state.stats.total(Outcome.IN_DOUBT) == (0 if idempotent else 2)
    assert set(ids) == accounted                                                 # all of them arrived
    status = channel_status(ch, state, result.plan, None, NOW)
    crds.kubectl("patch", "notificationchannel/ops", "-n", ns, "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": status}))
    shown = get(crds, "notificationchannel/ops", "-n", ns)
    assert shown["status"]["delivery"]["sent"] == state.stats.total(Outcome.SENT)
    assert "SENT" in crds.kubectl("get", "notificationchannels", "-n", ns).stdout.upper()
    assert SECRET_URL not in json.dumps(shown) and "s3cr3t" not in caplog.text
    assert "s3cr3t" not in crds.kubectl("get", "events", "-n", ns, "-o", "json").stdout

    capsys.readouterr()
    assert main(["notifications", "-n", ns, "--kubeconfig", str(crds.kubeconfig), "--output", "json"]) == 0
    out = capsys.readouterr().out
    (row,) = json.loads(out)["channels"]
    assert row["delivery"]["sent"] == state.stats.total(Outcome.SENT) and row["ready"] == "True"
    assert sum(row["bySubscription"][f"{ns}/cfo"].values()) == 6 and "s3cr3t" not in out


def test_failures_are_receipts_without_the_secret_and_a_budget_alert_is_queued(crds, kube_namespace, caplog):
    ns = kube_namespace
    setup(crds, ns)
    api, ch, subs, store = fresh(crds, ns)

    class Refusing:
        idempotent = True

        def __init__(self, channel, secrets):
            self.url = secrets["url"]

        def send(self, messages):
            raise DeliveryFailed(f"HTTP 503 from {self.url}")                 # a careless transport's error

    enqueue_insights(api, ns, insights(1, Priority.CRITICAL), NOW)
    result = flush_channel(api, ch, subs, NOW, transport=Refusing)            # what the channel's timer does
    assert result.failed == 1 and result.state.receipts[-1].outcome is Outcome.FAILED
    assert SECRET_URL not in result.state.last_error and "s3cr3t" not in caplog.text
    status = channel_status(ch, result.state, result.plan, None, NOW)
    assert status["conditions"][0]["status"] == "False" and "s3cr3t" not in json.dumps(status)

    budget_doc = {"apiVersion": "finops.dev/v1alpha1", "kind": "Budget", "metadata": {"name": "team", "namespace": ns},
                  "spec": {"amount": "100", "notifications": [{"channelRef": {"kind": "Webhook", "name": "ops"}}]}}
    crds.kubectl("apply", "-f", "-", input=yaml.safe_dump(budget_doc))
    budget = read_budget(get(crds, "budget/team", "-n", ns))

    class Period:
        key = "2026-03-01/Monthly"

    class Result:
        period = Period()

    crossing = Crossing(ThresholdRule(100, "Alert"), 120.0, 100.0, NOW)
    said = deliver(budget, crossing, Result(), api_client=api)
    assert said.endswith("queued for delivery to ops")
    deliver(budget, crossing, Result(), api_client=api)                        # once per period and threshold
    pending = [i for i in store.load(ch)[0].pending if i.id.startswith("budget:")]
    assert len(pending) == 1 and pending[0].priority is Priority.CRITICAL
    ok = flush(store, ch, subs, Recorder(idempotent=True), NOW + timedelta(minutes=5))
    assert ok.sent == 2 and not [i for i in ok.state.pending if i.id.startswith("budget:")]
    api.close()
