"""A FinOpsReport end to end: the real apiserver, the chart's RBAC, the real operator (``finops run``).

A namespace holds a savings ledger (SavingsOpportunity objects, written as a run writes them), a Slack
NotificationChannel (the loopback Slack emulator) and a FinOpsReport due every minute. Checked as a person
would: the report's status lists a report with its headline figures; its ConfigMap exists, owned by the
FinOpsReport and compressed; the operator's report server answers GET with the HTML (200, the CSP header),
the JSON and the Markdown, lists the reports and 404s unknown or malformed paths; the summary reaches
Slack once. Then the operator is restarted: the report is still served, and the slot already generated
is not generated again (same ConfigMap, no second entry for that date, no second Slack message).
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from finops_operator.api.reportserve import CSP
from finops_operator.api.store import OpportunityStore
from finops_operator.api.wiring import api_client_from
from finops_operator.ledger import Opportunity, OpportunityState

from tests.support.chat_emulators import slack_webhook
from tests.support.fixtures_operator import OperatorProcess, get_json, install_chart

pytestmark = pytest.mark.e2e
NS = "finops-reports"
RELEASE = "reports"
REPORT = "weekly"
HOOK = "/services/T0/B0/reports"


def seed_ledger(kube) -> None:
    now = datetime.now(UTC)
    opps = [Opportunity(id=f"cpu-{k}", detector="cpu-rightsizing", type="rightsize-cpu",
                        target=f"Deployment/{NS}/api-{k}/app", namespace=NS, team="shop", cluster="e2e",
                        state=state, estimated_monthly_savings=amount, confidence=0.9, risk=0.1, fingerprint=f"f{k}",
                        first_seen=now - timedelta(days=3), last_seen=now)
            for k, (state, amount) in enumerate([(OpportunityState.DETECTED, 120.0),
                                                 (OpportunityState.PROPOSED, 80.5)])]
    api = api_client_from(str(kube.kubeconfig))
    try:
        result = OpportunityStore(api, namespace=NS, policy="shop").save(opps)
    finally:
        api.close()
    assert result.ok, result.failed


@pytest.fixture(scope="module")
def world(kube, tmp_path_factory):
    sa = install_chart(kube, RELEASE, NS, f"rbac.secretRefs[0].namespace={NS}", "rbac.secretRefs[0].name=slack")
    slack = slack_webhook(HOOK).start()
    seed_ledger(kube)
    docs = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "slack", "namespace": NS},
             "stringData": {"url": slack.url + HOOK}},
            {"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationChannel",
             "metadata": {"name": "finance", "namespace": NS},
             "spec": {"type": "Slack", "secretRef": {"name": "slack"}}}]
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    tmp = tmp_path_factory.mktemp("reports-e2e")
    env = {**kube.environ(sa), "FINOPS_OPERATOR_NAMESPACE": NS, "FINOPS_REPORT_INTERVAL_SECONDS": "1",
           "FINOPS_NOTIFY_INTERVAL_SECONDS": "1", "FINOPS_POD_NAME": "finops-reports-0",
           "FINOPS_WORKDIR": str(tmp / "work"), "FINOPS_CLUSTER_NAME": "e2e", "FINOPS_LOG_LEVEL": "INFO"}
    operator = OperatorProcess(env=env, log=tmp / "operator.log", namespace=NS).start()
    try:
        yield kube, operator, slack
    finally:
        operator.stop()
        slack.stop()


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def report_status(kube) -> dict:
    return get_json(kube, "finopsreport", REPORT, "-n", NS).get("status") or {}


def stored(kube):
    reports = report_status(kube).get("reports") or []
    return reports or None


def test_a_report_is_generated_on_schedule_stored_served_delivered_and_survives_a_restart(world):
    kube, operator, slack = world
    base = f"http://127.0.0.1:{operator.reports_port}"
    manifest = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsReport",
                "metadata": {"name": REPORT, "namespace": NS},
                "spec": {"period": "Weekly", "schedule": "* * * * *", "timeZone": "Europe/Berlin",
                         "channels": [{"name": "finance"}], "retention": {"count": 3}}}
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    reports = operator.wait_for("a stored report in status", lambda: stored(kube), timeout=150)
    first = reports[0]
    status = report_status(kube)
    assert status["lastReport"]["date"] == first["date"] and status["lastSlot"]
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["status"] == "True" and ready["reason"] == "Generated", ready
    assert first["headline"]["opportunities"] == 2
    assert first["headline"]["estimatedMonthly"] == pytest.approx(200.5)
    assert first["path"] == f"/reports/{NS}/{REPORT}/{first['date']}.html"

    cm = get_json(kube, "configmap", first["configMap"], "-n", NS)
    owner = cm["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "FinOpsReport" and owner["name"] == REPORT
    assert cm["metadata"]["labels"]["finops.dev/report-date"] == first["date"]
    assert set(cm["binaryData"]) == {"report.html.gz", "report.json.gz", "report.md.gz"}

    check_served(base, first)
    assert status["delivery"] == [{"channel": "finance", "queued": True, "message": "queued for delivery"}]
    try:
        operator.wait_for("the summary in Slack", lambda: slack.accepted, timeout=60)
    except AssertionError:
        channel = get_json(kube, "notificationchannel", "finance", "-n", NS).get("status")
        raise AssertionError(f"channel status: {channel}; slack requests: {slack.requests}") from None

    # Restart: the stored report is still served; the generated slot is not generated again.
    uid = cm["metadata"]["uid"]
    operator.stop()
    operator.start()
    base = f"http://127.0.0.1:{operator.reports_port}"      # a new free port each start
    operator.wait_for("the report server after the restart", lambda: _up(base, first), timeout=60)
    time.sleep(5)                                  # several report timer ticks of the new process
    cm_again = get_json(kube, "configmap", first["configMap"], "-n", NS)
    assert cm_again["metadata"]["uid"] == uid and cm_again["metadata"]["resourceVersion"] == \
        cm["metadata"]["resourceVersion"], "the slot's report was stored again"
    dates = [r["date"] for r in report_status(kube)["reports"]]
    assert len(dates) == len(set(dates)) and first["date"] in dates
    messages = [m for m in slack.accepted if first["date"] in json.dumps(m)]
    assert len(messages) == 1, f"the summary of {first['date']} was sent {len(messages)} times"
    check_served(base, first)


def _up(base: str, entry: dict) -> bool:
    try:
        return fetch(base + entry["path"])[0] == 200
    except OSError:
        return False


def check_served(base: str, entry: dict) -> None:
    status, headers, body = fetch(base + entry["path"])
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CSP
    assert body.startswith(b"<!doctype html>") or body.lower().startswith(b"<!doctype html>")
    assert b"<svg" in body
    status, headers, body = fetch(base + entry["path"].replace(".html", ".json"))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["headline"]["opportunities"] == 2
    status, headers, body = fetch(base + entry["path"].replace(".html", ".md"))
    assert status == 200 and headers["Content-Type"].startswith("text/markdown") and body.strip()
    status, headers, body = fetch(f"{base}/reports/{NS}/{REPORT}/")
    assert status == 200 and headers["Content-Security-Policy"] == CSP
    assert f'href="{entry["date"]}.html"'.encode() in body
    for bad in (f"/reports/{NS}/{REPORT}/2001-01-01-0000.html", f"/reports/{NS}/nope/", f"/reports/{NS}/../x/",
                f"/reports/{NS}/{REPORT}/..%2F..%2Fetc.html", "/reports/", "/"):
        assert fetch(base + bad)[0] == 404, bad
