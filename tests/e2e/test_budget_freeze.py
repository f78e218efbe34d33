"""A Budget's FreezeGrowth end to end: the real apiserver, the real operator (``finops run``), the e2e
Prometheus and a GitHub repository (the loopback emulator over a real bare repo).

A FinOpsPolicy (GitHub provider) and a Budget in one namespace; the Budget's amount is so low that its
FreezeGrowth threshold is crossed at the first evaluation. Checked as a person would: the Budget's status
and ``kubectl get budgets``; one ThresholdCrossed and one ActionTaken Event; one pull request whose branch
adds exactly the ResourceQuota beside the namespace's manifest, at the namespace's current requests; the
SavingsOpportunity (``kubectl get fsav``) pointing at it. Then the operator is stopped and started and the
budget evaluated again several times: no second pull request, no second Event.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from finops_operator.detectors.freeze import QUOTA_FILE, QUOTA_NAME

from tests.support.fixtures_git import git, make_bare_remote
from tests.support.fixtures_operator import SHOP, OperatorProcess, get_json, seed_cluster
from tests.support.github_emulator import GitHubEmulator
from tests.support.prometheus_server import budget_start_date

pytestmark = pytest.mark.e2e
NS = "finops-freeze"
POLICY = "freeze-policy"
BUDGET = "shop-freeze"
PROBE = "freeze-probe"              # a Pod in the budget's namespace: the requests the quota freezes at
NAMESPACE_FILE = f"apps/{SHOP}/namespace.yaml"


@pytest.fixture(scope="module")
def freeze_world(kube, e2e_prometheus, tmp_path_factory):
    files = seed_cluster(kube, e2e_prometheus.end, NS, SHOP)
    files[NAMESPACE_FILE] = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {SHOP}\n"
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(probe_pod()))
    tmp = tmp_path_factory.mktemp("budget-freeze")
    emu = GitHubEmulator(make_bare_remote(tmp / "github", files=files), "acme/gitops").start()
    kube.kubectl("create", "secret", "generic", "gh-token", "-n", NS, f"--from-literal=token={emu.token}",
                 check=False)
    env = {**kube.environ(), "FINOPS_OPERATOR_NAMESPACE": NS, "FINOPS_TIMER_INTERVAL_SECONDS": "1",
           "FINOPS_BUDGET_INTERVAL_SECONDS": "2", "FINOPS_POD_NAME": "finops-freeze-0",
           "FINOPS_WORKDIR": str(tmp / "work"), "FINOPS_CLUSTER_NAME": "freeze", "FINOPS_LOG_LEVEL": "INFO",
           "GIT_AUTHOR_NAME": "finops", "GIT_AUTHOR_EMAIL": "finops@example.test",
           "GIT_COMMITTER_NAME": "finops", "GIT_COMMITTER_EMAIL": "finops@example.test"}
    operator = OperatorProcess(env=env, log=tmp / "operator.log", namespace=NS)
    try:
        yield kube, emu, operator, tmp
    finally:
        operator.stop()
        emu.stop()
        kube.kubectl("delete", "pod", PROBE, "-n", SHOP, "--wait=false", check=False)   # other modules scan SHOP
        kube.kubectl("delete", "budget", BUDGET, "-n", NS, "--wait=false", check=False)
    assert not emu.unhandled, emu.unhandled


def probe_pod() -> dict[str, Any]:
    """Never scheduled (no scheduler runs): Pending, counted by a ResourceQuota as by ``namespace_requests``."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": PROBE, "namespace": SHOP},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0",
                                     "resources": {"requests": {"cpu": "750m", "memory": "1536Mi"}}}]}}


def manifests(emu: GitHubEmulator, prometheus: str) -> str:
    policy = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
              "metadata": {"name": POLICY, "namespace": NS},
              "spec": {"schedule": "0 6 1 1 *", "timeZone": "UTC", "mode": "PullRequest",
                       "scope": {"namespaces": [SHOP]},
                       "dataSources": {"prometheus": {"url": prometheus, "historyWindow": "7d", "stepSeconds": 300}},
                       "guardrails": {"maxSingleChangePercent": 95},
                       "git": {"provider": "GitHub", "repository": emu.full_name, "apiUrl": emu.api_url,
                               "tokenSecretRef": {"name": "gh-token"}, "paths": ["apps"], "labels": ["finops"]}}}
    budget = {"apiVersion": "finops.dev/v1alpha1", "kind": "Budget", "metadata": {"name": BUDGET, "namespace": NS},
              "spec": {"amount": "0.01", "currency": "USD", "period": "Monthly", "startDate": budget_start_date(),
                       "scope": {"namespaces": [SHOP]},
                       "thresholds": [{"percent": 100, "action": "FreezeGrowth"}]}}
    return yaml.safe_dump_all([policy, budget])


def budget_events(kube) -> list[dict[str, Any]]:
    return get_json(kube, "events", "-n", NS, "--field-selector",
                    f"involvedObject.name={BUDGET},involvedObject.kind=Budget")["items"]


def evaluated(kube, after: str = "") -> dict[str, Any] | None:
    body = get_json(kube, "budget", BUDGET, "-n", NS)
    status = body.get("status") or {}
    ready = {c["type"]: c for c in status.get("conditions") or []}.get("Ready", {})
    assert ready.get("status") != "False", f"the budget was not evaluated: {ready}"
    return body if ready.get("reason") == "Evaluated" and status.get("lastEvaluatedTime", "") > after else None


def test_freeze_growth_opens_one_quota_pull_request_and_a_restart_repeats_nothing(freeze_world, e2e_prometheus):
    kube, emu, operator, tmp = freeze_world
    kube.kubectl("apply", "-f", "-", input=manifests(emu, e2e_prometheus.url))
    operator.start()
    taken = operator.wait_for("the FreezeGrowth action", lambda: [e for e in budget_events(kube)
                                                                 if e["reason"] == "ActionTaken"], timeout=180)
    body = operator.wait_for("the evaluated budget", lambda: evaluated(kube))
    check_status(kube, body)
    [action] = taken
    assert "opened PR #" in action["message"] and f"ResourceQuota for {SHOP}" in action["message"], action

    [pr] = emu.pulls()
    assert pr["state"] == "open" and f"{NS}/{BUDGET}" in pr["body"]
    check_branch(emu, pr)
    check_opportunity(kube, pr)

    # A restart and several more evaluations: nothing fires again, nothing is proposed twice.
    last = body["status"]["lastEvaluatedTime"]
    operator.stop()
    operator.start()
    for _ in range(3):
        body = operator.wait_for("another evaluation", lambda: evaluated(kube, after=last), timeout=60)
        last = body["status"]["lastEvaluatedTime"]
    reasons = sorted(e["reason"] for e in budget_events(kube) if e["reason"] in ("ThresholdCrossed", "ActionTaken"))
    assert reasons == ["ActionTaken", "ThresholdCrossed"], reasons
    assert [e["count"] for e in budget_events(kube) if e["reason"] == "ThresholdCrossed"] == [1]
    assert [p["number"] for p in emu.pulls()] == [pr["number"]]
    assert body["status"]["freezes"][0]["period"] == body["status"]["period"]
    tracebacks = [ln for ln in operator.text().splitlines() if "Traceback" in ln]
    assert not tracebacks, operator.text()[-4000:]


def check_status(kube, body: dict[str, Any]) -> None:
    status = body["status"]
    assert float(status["currentSpend"]) > 0.01 and status["state"] == "Exceeded", status
    assert float(status["forecastUpper"]) >= float(status["forecastedSpend"]) >= float(status["forecastLower"]) >= 0
    assert status["usedPercent"] >= 100 and status["forecastMethod"]
    [fired] = status["triggeredThresholds"]
    assert fired["percent"] == 100 and fired["action"] == "FreezeGrowth"
    [freeze] = status["freezes"]
    assert freeze["threshold"] == "100" and freeze["period"] == status["period"]
    kinds = [e["type"] for e in status["events"]]
    assert kinds.count("ThresholdCrossed") == 1 and kinds.count("ActionTaken") == 1, status["events"]
    shown = kube.kubectl("get", "budgets", "-n", NS).stdout
    print(f"\n$ kubectl get budgets -n {NS}\n{shown}")
    header, row = shown.splitlines()[:2]
    for column in ("READY", "AMOUNT", "SPENT", "USED%", "FORECAST", "STATE"):
        assert column in header.split(), header
    cells = dict(zip(header.split(), row.split()))
    assert cells["NAME"] == BUDGET and cells["READY"] == "True" and cells["STATE"] == "Exceeded"
    assert cells["SPENT"] == status["currentSpend"] and cells["AMOUNT"] == "0.01", row


def check_branch(emu: GitHubEmulator, pr: dict[str, Any]) -> None:
    """One commit on main adding exactly the ResourceQuota file beside the Namespace manifest."""
    head, base = pr["head"]["ref"], pr["base"]["ref"]
    assert git("rev-list", "--count", f"{base}..{head}", cwd=emu.bare) == "1"
    changed = git("diff", "--name-status", f"{base}...{head}", cwd=emu.bare).splitlines()
    quota_path = f"{Path(NAMESPACE_FILE).parent}/{QUOTA_FILE}"
    assert changed == [f"A\t{quota_path}"], changed
    quota = yaml.safe_load(git("show", f"{head}:{quota_path}", cwd=emu.bare))
    assert quota["kind"] == "ResourceQuota" and quota["metadata"]["name"] == QUOTA_NAME
    assert quota["metadata"].get("namespace", SHOP) == SHOP
    assert quota["spec"] == {"hard": {"requests.cpu": "750m", "requests.memory": "1536Mi"}}, quota


def check_opportunity(kube, pr: dict[str, Any]) -> None:
    items = get_json(kube, "fsav", "-n", NS, "-l", f"finops.dev/policy={POLICY}")["items"]
    assert [o["spec"]["type"] for o in items] == ["freeze-growth"], items
    [opp] = items
    assert opp["spec"]["target"]["namespace"] == SHOP
    status = opp["status"]
    assert status["state"] == "Proposed" and status["pullRequest"]["number"] == pr["number"], status
    assert status["pullRequest"]["branch"] == pr["head"]["ref"]
    shown = kube.kubectl("get", "fsav", "-n", NS).stdout
    print(f"\n$ kubectl get fsav -n {NS}\n{shown}")
    assert "freeze-growth" in shown and "Proposed" in shown
