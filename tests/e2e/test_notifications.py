"""Notifications end to end: the real apiserver, the real operator (``finops run``), the e2e Prometheus and
loopback services that validate the payloads as Slack and a signed webhook receiver do.

Applied with kubectl, as a user would: one Secret with both webhook URLs and the HMAC secret (the URLs are
credentials), two NotificationChannels (Slack, Webhook) reading their keys of it, a subscription per persona
(engineer: the team's daily digest; finance), a FinOpsPolicy (DryRun, no git) whose ``spec.health`` runs
team ``shop``'s daily job at a local time that has just passed, and a Budget so low that its Notify and
Alert thresholds cross at the first evaluation, with ``spec.notifications`` naming the channels (Slack:
Alert only; the webhook: both).

Checked: Slack got the budget alert exactly once (a payload Slack accepts) and the daily digest; the webhook
got both thresholds, signed; ``kubectl get notificationchannels`` shows the counts and the status the
receipts; the Secret's URL paths and HMAC secret are in no log line, Event or status; the operator stopped
and started, its policy run again so the health timer ticks (the team's job does not run twice on a day),
and left to run a few intervals delivers nothing twice.
"""
from __future__ import annotations

import json
import secrets
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.support.chat_emulators import signed_webhook, slack_webhook
from tests.support.fixtures_operator import SHOP, OperatorProcess, get_json, seed_cluster, wait_established
from tests.support.prometheus_server import budget_start_date

pytestmark = pytest.mark.e2e
NS = "finops-notify"
POLICY = "notify-policy"
BUDGET = "shop-alerts"
SECRET = "chat-hooks"
TEAM = "shop"
INTERVAL = 2                     # FINOPS_NOTIFY_INTERVAL_SECONDS and FINOPS_BUDGET_INTERVAL_SECONDS


@pytest.fixture(scope="module")
def notify_world(kube, e2e_prometheus, tmp_path_factory):
    seed_cluster(kube, e2e_prometheus.end, NS, SHOP)
    wait_established(kube, ("notificationchannels.finops.dev", "notificationsubscriptions.finops.dev"))
    tmp = tmp_path_factory.mktemp("notifications")
    slack_path = f"/services/T0E2E/B0E2E/{secrets.token_hex(12)}"
    hook_path = f"/hooks/{secrets.token_hex(12)}"
    hmac_secret = secrets.token_hex(16)
    slack, hook = slack_webhook(slack_path).start(), signed_webhook(hook_path, hmac_secret).start()
    env = {**kube.environ(), "FINOPS_OPERATOR_NAMESPACE": NS, "FINOPS_TIMER_INTERVAL_SECONDS": "1",
           "FINOPS_BUDGET_INTERVAL_SECONDS": str(INTERVAL), "FINOPS_NOTIFY_INTERVAL_SECONDS": str(INTERVAL),
           "FINOPS_POD_NAME": "finops-notify-0", "FINOPS_WORKDIR": str(tmp / "work"),
           "FINOPS_CLUSTER_NAME": "notify", "FINOPS_LOG_LEVEL": "DEBUG"}
    operator = OperatorProcess(env=env, log=tmp / "operator.log", namespace=NS)
    world = {"slack": slack, "hook": hook, "operator": operator,
             "secrets": (slack_path, hook_path, hmac_secret, slack.url + slack_path, hook.url + hook_path)}
    try:
        yield kube, world
    finally:
        operator.stop()
        slack.stop()
        hook.stop()
        kube.kubectl("delete", "budget", BUDGET, "-n", NS, "--wait=false", check=False)


def health_time(now: datetime) -> tuple[str, str]:
    """A zone and a local HH:MM that has just passed there (never across the local midnight)."""
    zone = "UTC" if now.hour >= 1 else "Etc/GMT-3"           # Etc/GMT-3 is UTC+3
    local = now.astimezone(ZoneInfo(zone)) - timedelta(minutes=1)
    return zone, local.strftime("%H:%M")


def manifests(world, prometheus: str, now: datetime) -> str:
    slack_path, hook_path, hmac_secret, _, _ = world["secrets"]
    zone, at = health_time(now)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": NS},
              "stringData": {"slackUrl": world["slack"].url + slack_path, "hookUrl": world["hook"].url + hook_path,
                             "hookHmac": hmac_secret}}
    channels = [{"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationChannel",
                 "metadata": {"name": name, "namespace": NS},
                 "spec": {"type": kind, "secretRef": {"name": SECRET, "keys": keys}}}
                for name, kind, keys in (("slack", "Slack", {"url": "slackUrl"}),
                                         ("hook", "Webhook", {"url": "hookUrl", "hmacSecret": "hookHmac"}))]
    subscriptions = [
        {"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationSubscription",
         "metadata": {"name": "engineers", "namespace": NS},
         "spec": {"persona": "engineer", "recipients": ["#shop-eng"],
                  "channels": [{"name": "slack", "minPriority": "Low"}, {"name": "hook", "minPriority": "Critical"}],
                  "batching": {"size": 50, "intervalSeconds": 60, "maxPriority": "High"}, "rateLimitPerHour": 30}},
        {"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationSubscription",
         "metadata": {"name": "finance", "namespace": NS},
         "spec": {"persona": "finance", "recipients": ["finance@example.test"],
                  "channels": [{"name": "slack", "minPriority": "Medium"}, {"name": "hook", "minPriority": "High"}],
                  "batching": {"size": 10, "intervalSeconds": 60}}}]
    policy = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
              "metadata": {"name": POLICY, "namespace": NS, "annotations": {"finops.dev/run-now": "first"}},
              "spec": {"schedule": "0 6 1 1 *", "timeZone": "UTC", "mode": "DryRun",
                       "scope": {"namespaces": [SHOP]},
                       "dataSources": {"prometheus": {"url": prometheus, "historyWindow": "7d", "stepSeconds": 300}},
                       "health": {"time": "06:00", "timeZone": "UTC",
                                  "teams": [{"name": TEAM, "timeZone": zone, "time": at}]}}}
    budget = {"apiVersion": "finops.dev/v1alpha1", "kind": "Budget", "metadata": {"name": BUDGET, "namespace": NS},
              "spec": {"amount": "0.01", "currency": "USD", "period": "Monthly", "startDate": budget_start_date(),
                       "scope": {"namespaces": [SHOP]},
                       "thresholds": [{"percent": 50, "action": "Notify"}, {"percent": 100, "action": "Alert"}],
                       "notifications": [
                           {"channelRef": {"kind": "Slack", "name": "slack"}, "actions": ["Alert"]},
                           {"channelRef": {"kind": "Webhook", "name": "hook"}}]}}
    return yaml.safe_dump_all([secret, *channels, *subscriptions, policy, budget])


def channel(kube, name: str) -> dict:
    return get_json(kube, "notificationchannel", name, "-n", NS)


def delivery(kube, name: str) -> dict:
    return (channel(kube, name).get("status") or {}).get("delivery") or {}


def budget_alerts(slack) -> list[dict]:
    return [b for b in slack.accepted if f"Budget {NS}/{BUDGET}" in json.dumps(b)]


def digests(slack) -> list[dict]:
    return [b for b in slack.accepted if "insights for engineer" in json.dumps(b)
            or "insight for engineer" in json.dumps(b)]


def test_budget_alert_and_daily_digest_delivered_once_with_receipts_and_no_secret_anywhere(notify_world,
                                                                                          e2e_prometheus):
    kube, world = notify_world
    slack, hook, operator = world["slack"], world["hook"], world["operator"]
    kube.kubectl("apply", "-f", "-", input=manifests(world, e2e_prometheus.url, datetime.now(UTC)))
    operator.start()

    operator.wait_for("the budget alert on Slack", lambda: budget_alerts(slack), timeout=180)
    operator.wait_for("both thresholds on the signed webhook",
                      lambda: len([b for b in hook.accepted if BUDGET in json.dumps(b)]) >= 2, timeout=60)
    operator.wait_for("the daily digest on Slack", lambda: digests(slack), timeout=240)
    for name in ("slack", "hook"):
        operator.wait_for(f"channel {name}'s status with nothing pending",
                          lambda n=name: delivery(kube, n).get("sent") and delivery(kube, n).get("pending") == 0,
                          timeout=60)
    check_payloads(slack, hook)
    check_channels(kube)

    # Stop, start, and let a few intervals of budget evaluations and channel flushes go by: nothing twice.
    runs = [ln for ln in metrics(operator).splitlines() if ln.startswith("finops_health_job_runs_total{")]
    assert f'finops_health_job_runs_total{{outcome="ok",team="{TEAM}"}} 1.0' in runs, runs
    seen = (json.dumps(slack.accepted), json.dumps(hook.accepted))
    sent = {name: delivery(kube, name)["sent"] for name in ("slack", "hook")}
    operator.stop()
    operator.start()
    operator.wait_for("the operator's first ticks after the restart",
                      lambda: operator.text().split("===== start")[-1].count("budget Exceeded") >= 3, timeout=90)
    # a new policy run feeds the health timer again: its tick scores the teams, the daily job already ran today
    kube.kubectl("annotate", "--overwrite", "fpol", POLICY, "-n", NS, "finops.dev/run-now=second")
    operator.wait_for("the health timer's tick after the restart",
                      lambda: "finops_health_score{" in metrics(operator), timeout=150, interval=1.0)
    time.sleep(4 * INTERVAL)
    assert "finops_health_job_runs_total{" not in metrics(operator), "the daily job ran twice on one day"
    assert (json.dumps(slack.accepted), json.dumps(hook.accepted)) == seen, "something was delivered twice"
    assert {name: delivery(kube, name)["sent"] for name in ("slack", "hook")} == sent
    assert len(budget_alerts(slack)) == 1
    check_no_secret(kube, operator, world["secrets"])
    tracebacks = [ln for ln in operator.text().splitlines() if "Traceback" in ln]
    assert not tracebacks, operator.text()[-4000:]


def metrics(operator) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as answer:
            return answer.read().decode()
    except OSError:
        return ""


def check_payloads(slack, hook) -> None:
    """Slack: exactly one Alert message (Notify is not routed to Slack); the webhook: Notify and Alert, signed."""
    print("\nSlack received:\n" + "\n".join(json.dumps(b)[:600] for b in slack.accepted))
    [alert] = budget_alerts(slack)
    text = json.dumps(alert)
    assert "100% of the amount" in text and "action Alert" in text, alert
    assert "50% of the amount" not in text
    assert alert.get("blocks") and alert.get("text"), alert                   # Block Kit with a fallback text
    [digest] = digests(slack)
    assert "[" in json.dumps(digest) and "insight" in digest["text"], digest
    assert not any(r.path != slack.requests[0].path for r in slack.requests)  # only the secret path was used
    hooked = [b for b in hook.accepted if BUDGET in json.dumps(b)]
    titles = sorted(b["title"] for b in hooked)
    assert len(titles) == 2 and any("50% of the amount" in t for t in titles) and \
        any("100% of the amount" in t for t in titles), titles
    assert {b["priority"] for b in hooked} == {"high", "critical"}, hooked
    assert all(r.headers.get("x-finops-signature", "").startswith("sha256=") for r in hook.requests)


def check_channels(kube) -> None:
    shown = kube.kubectl("get", "notificationchannels", "-n", NS, "-o", "wide").stdout      # Pending is wide-only
    print(f"\n$ kubectl get notificationchannels -n {NS} -o wide\n{shown}")
    header, *rows = shown.splitlines()
    assert header.split()[:6] == ["NAME", "TYPE", "READY", "SENT", "FAILED", "PENDING"], header
    cells = {r.split()[0]: dict(zip(header.split(), r.split())) for r in rows}
    assert cells["slack"]["TYPE"] == "Slack" and cells["hook"]["TYPE"] == "Webhook"
    for name in ("slack", "hook"):
        row, status = cells[name], channel(kube, name)["status"]
        assert row["READY"] == "True" and row["FAILED"] == "0" and row["PENDING"] == "0", row
        receipts = status["delivery"]["receipts"]
        assert receipts and all(r["outcome"] == "Sent" for r in receipts), receipts
        # Sent counts items (a digest of two is two), each receipt says how many it carried
        assert int(row["SENT"]) == status["delivery"]["sent"] == sum(r["items"] for r in receipts), (row, receipts)
    subs = {r["subscription"] for r in channel(kube, "slack")["status"]["delivery"]["receipts"]}
    assert f"{NS}/engineers" in subs and f"budget:{NS}/{BUDGET}" in subs, subs


def check_no_secret(kube, operator, values: tuple[str, ...]) -> None:
    """Neither URL path nor the HMAC secret in the operator's log, any Event or any status."""
    events = kube.kubectl("get", "events", "-A", "-o", "json").stdout
    statuses = json.dumps([(b.get("kind"), b.get("status")) for kind in
                           ("notificationchannels", "notificationsubscriptions", "budgets", "finopspolicies")
                           for b in get_json(kube, kind, "-n", NS)["items"]])
    log = operator.text()
    for value in values:
        assert value not in log, f"a credential is in the operator's log: {value[:12]}..."
        assert value not in events, "a credential is in an Event"
        assert value not in statuses, "a credential is in a status"
    assert "ThresholdCrossed" in events and "/services/" not in statuses
