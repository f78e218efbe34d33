"""End to end on the real kube-apiserver: the operator, run with the chart's ServiceAccount, closes the loop.

Setup, as a platform team would do it: ``kubectl apply -f crds/``, ``helm install`` the chart,
workloads in namespace e2e-shop (no controller-manager runs, so no Pods: usage comes from
a real Prometheus backfilled with the simulator's OpenMetrics for the same workloads), a bare
git remote holding the GitOps manifests, a FinOpsPolicy pointing at both, a Budget.

Then ``finops run`` (the chart's ServiceAccount token, no admin rights) is asked to run the
policy (annotation ``finops.dev/run-now``) and killed with SIGKILL as soon as its branch
reaches the remote, i.e. mid-run; restarted, it finishes the run. The test checks what a
person would: SavingsOpportunity objects, the branch's diff, the policy's status,
conditions and Events, metrics, and that restarts made no duplicate objects or branches.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from finops_operator.api.opportunities import object_name
from finops_operator.units import parse_cpu, parse_memory

from tests.support.fixtures_git import git, make_bare_remote
from tests.support.fixtures_operator import SHOP, OperatorProcess, get_json, install_chart, seed_cluster
from tests.support.prometheus_server import budget_start_date

pytestmark = pytest.mark.e2e
OPERATOR_NS = "finops-e2e"
RELEASE = "e2e"
POLICY = "shop"


def remote_branches(remote: Path) -> dict[str, str]:
    out = git("for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/finops/", cwd=remote)
    return dict(line.split() for line in out.splitlines() if line)


def policy_manifest(prometheus_url: str, remote: Path) -> dict:
    return {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
            "metadata": {"name": POLICY, "namespace": OPERATOR_NS},
            "spec": {"schedule": "0 6 * * 1-5", "timeZone": "Europe/Berlin", "mode": "PullRequest",
                     "scope": {"namespaces": [SHOP]},
                     "dataSources": {"prometheus": {"url": prometheus_url, "historyWindow": "7d", "stepSeconds": 300}},
                     "guardrails": {"maxSingleChangePercent": 95},
                     "git": {"provider": "Git", "repository": f"file://{remote}", "baseBranch": "main",
                             "paths": ["apps"], "labels": ["finops"]}}}


BUDGET = {"apiVersion": "finops.dev/v1alpha1", "kind": "Budget",
          "metadata": {"name": "shop-monthly", "namespace": OPERATOR_NS},
          "spec": {"amount": "2500", "currency": "USD", "period": "Monthly", "startDate": budget_start_date(),
                   "scope": {"namespaces": [SHOP]}}}


@pytest.fixture(scope="module")
def world(kube, e2e_prometheus, tmp_path_factory):
    """Chart installed, workloads created, GitOps remote seeded; yields (kube, sa kubeconfig, remote, tmp)."""
    sa = install_chart(kube, RELEASE, OPERATOR_NS)
    files = seed_cluster(kube, e2e_prometheus.end, SHOP, crds=False)
    tmp = tmp_path_factory.mktemp("operator-e2e")
    remote = make_bare_remote(tmp / "remote", files={**files, "README.md": "# gitops\n"})
    return kube, sa, remote, tmp


@pytest.fixture(scope="module")
def operator(world, e2e_prometheus):
    kube, sa, _, tmp = world
    env = {**kube.environ(sa), "FINOPS_OPERATOR_NAMESPACE": OPERATOR_NS, "FINOPS_TIMER_INTERVAL_SECONDS": "1",
           "FINOPS_WORKDIR": str(tmp / "work"), "FINOPS_CLUSTER_NAME": "e2e", "FINOPS_LOG_LEVEL": "INFO",
           "FINOPS_ALLOW_LOCAL_GIT": "true",   # the test's remote is a bare repository on this disk
           # The pod's name (the chart sets it): a restarted process takes its run Lease back at once.
           "FINOPS_POD_NAME": "finops-e2e-0", "FINOPS_LOG_FORMAT": "json",
           "GIT_AUTHOR_NAME": "finops-operator", "GIT_AUTHOR_EMAIL": "finops@example.test",
           "GIT_COMMITTER_NAME": "finops-operator", "GIT_COMMITTER_EMAIL": "finops@example.test"}
    op = OperatorProcess(env=env, log=tmp / "operator.log", namespace=OPERATOR_NS).start()
    yield op
    op.stop()


def annotate_run_now(kube, value: str) -> None:
    kube.kubectl("annotate", "--overwrite", "fpol", POLICY, "-n", OPERATOR_NS, f"finops.dev/run-now={value}")


def handled(kube, value: str):
    def check():
        body = get_json(kube, "fpol", POLICY, "-n", OPERATOR_NS)
        done = body["metadata"].get("annotations", {}).get("finops.dev/run-now-handled") == value
        return body if done else None
    return check


def not_failed(kube) -> None:
    """Fail at once (instead of timing out) when the run reports Ready=False."""
    body = get_json(kube, "fpol", POLICY, "-n", OPERATOR_NS)
    ready = {c["type"]: c for c in body.get("status", {}).get("conditions", [])}.get("Ready", {})
    assert ready.get("status") != "False", f"the run failed: {ready.get('reason')}: {ready.get('message')}"


def opportunities(kube) -> list[dict]:
    return get_json(kube, "fsav", "-n", OPERATOR_NS, "-l", f"finops.dev/policy={POLICY}")["items"]


def test_operator_closes_the_loop_and_survives_restarts(world, operator, e2e_prometheus):
    kube, _, remote, tmp = world
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(policy_manifest(e2e_prometheus.url, remote)))
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(BUDGET))
    operator.wait_for("the policy to be validated", lambda: (get_json(kube, "fpol", POLICY, "-n", OPERATOR_NS)
                                                             .get("status", {}).get("nextRunTime")))

    # Run 1, killed as soon as its branch reaches the remote (before or while the ledger is written).
    annotate_run_now(kube, "1")
    branches = operator.wait_for("a branch in the remote", lambda: remote_branches(remote) or not_failed(kube),
                                 timeout=120, interval=0.05)
    operator.kill()
    objects_at_kill = len(opportunities(kube))
    operator.start()
    body = operator.wait_for("the restarted operator to finish run 1", handled(kube, "1"), timeout=120)
    assert remote_branches(remote).keys() == branches.keys(), "the restart pushed a second branch"

    items = check_opportunities(kube, objects_at_kill)
    check_branch(remote, branches, items)
    check_status(kube, body)

    # Run 2 after a clean restart: the ledger comes back from the objects; nothing is duplicated.
    before = {o["metadata"]["name"]: o for o in opportunities(kube)}
    operator.stop()
    operator.start()
    annotate_run_now(kube, "2")
    operator.wait_for("run 2", handled(kube, "2"), timeout=120)
    after = {o["metadata"]["name"]: o for o in opportunities(kube)}
    assert after.keys() == before.keys()
    for name, obj in after.items():
        assert obj["metadata"]["uid"] == before[name]["metadata"]["uid"], f"{name} was recreated"
        assert obj["status"]["state"] == "Proposed"
        assert obj["status"]["history"] == before[name]["status"]["history"], "a no-op run rewrote the history"
    assert remote_branches(remote).keys() == branches.keys()
    # Metrics are per process: run 1 may have finished in the killed process, run 2 ran in this one.
    check_events_metrics_and_health(kube, operator)

    shown = kube.kubectl("get", "finopspolicies,budgets,savingsopportunities", "-n", OPERATOR_NS).stdout
    (tmp / "kubectl-get.txt").write_text(shown)
    print(f"\n$ kubectl get finopspolicies,budgets,savingsopportunities -n {OPERATOR_NS}\n{shown}")
    assert "shop" in shown and "Proposed" in shown and "shop-monthly" in shown


def check_opportunities(kube, objects_at_kill: int) -> list[dict]:
    items = opportunities(kube)
    by_target = {(o["spec"]["type"], o["spec"]["target"]["workload"]["name"]): o for o in items}
    assert set(by_target) == {("rightsize-cpu", "web"), ("rightsize-memory", "db")}, \
        f"unexpected findings: {sorted(by_target)} (objects before the kill: {objects_at_kill})"
    names = [o["metadata"]["name"] for o in items]
    assert len(names) == len(set(names)) == 2
    cpu, memory = by_target[("rightsize-cpu", "web")], by_target[("rightsize-memory", "db")]
    for obj in (cpu, memory):
        opp_id = obj["metadata"]["labels"]["finops.dev/opportunity-id"]
        assert obj["metadata"]["name"] == object_name(POLICY, opp_id)
        assert obj["metadata"]["ownerReferences"][0]["name"] == POLICY
        assert obj["spec"]["target"]["namespace"] == SHOP and obj["spec"]["policyRef"] == {"name": POLICY}
        status = obj["status"]
        assert status["state"] == "Proposed", status
        assert status["decision"]["verdict"] == "allow"
        assert float(status["estimatedMonthlySavings"]) > 0
        assert status["pullRequest"]["branch"].startswith("finops/")
        assert status["pullRequest"]["url"].startswith("file://")
        assert [h["to"] for h in status["history"]] == ["Detected", "Proposed"]
        assert status["evidence"], "evidence from the finding"
    request = {c["field"]: c for c in cpu["status"]["changes"]}["resources.requests.cpu"]
    assert request["before"] == "1" and 0.08 <= parse_cpu(request["after"]) <= 0.2, request
    request = {c["field"]: c for c in memory["status"]["changes"]}["resources.requests.memory"]
    assert request["before"] == "4Gi" and 1.0 * 2**30 <= parse_memory(request["after"]) <= 1.5 * 2**30, request
    return items


def check_branch(remote: Path, branches: dict[str, str], items: list[dict]) -> None:
    """The branch changes exactly the values the SavingsOpportunity objects list, nothing else."""
    assert len(branches) == 1, branches
    branch = next(iter(branches))
    assert git("rev-list", "--count", f"main..{branch}", cwd=remote) == "1", "one commit per change set"
    diff = git("diff", f"main...{branch}", cwd=remote)
    changed = sorted(line[0] + line[1:].strip().replace("'", "") for line in diff.splitlines()
                     if line.startswith(("+", "-")) and not line.startswith(("+++", "---")))
    expected = sorted(f"{sign}{c['field'].rsplit('.', 1)[1]}: {c[side]}" for o in items for c in o["status"]["changes"]
                      for sign, side in (("-", "before"), ("+", "after")))
    assert changed == expected, diff
    assert f"apps/{SHOP}/web.yaml" in diff and f"apps/{SHOP}/db.yaml" in diff
    web = git("show", f"{branch}:apps/{SHOP}/web.yaml", cwd=remote)
    assert web.startswith("# Deployment web: owned by team shop\n"), "comments are kept"


def check_status(kube, body: dict) -> None:
    status = body["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True", conditions["Ready"]
    assert conditions["Ready"]["reason"] == "RunSucceeded"
    assert "2 findings (2 allowed" in conditions["Ready"]["message"]
    assert conditions["DataSourcesReady"]["status"] == "True"
    assert "prometheus" in conditions["DataSourcesReady"]["message"]
    assert conditions["PullRequestsReady"]["status"] == "True"
    assert status["findings"] == 2 and status["opportunities"]["proposed"] == 2
    assert status["openPullRequests"] == 1 and float(status["estimatedMonthlySavings"]) > 0
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert status["scopeErrors"] == [] and status["namespacesScanned"] == 1
    assert status["nextRunTime"] > status["lastRunTime"]
    deadline = time.monotonic() + 120           # the budget timer evaluates from the policy's Prometheus
    while True:
        budget = get_json(kube, "budget", "shop-monthly", "-n", OPERATOR_NS)
        ready = {c["type"]: c for c in budget.get("status", {}).get("conditions", [])}.get("Ready", {})
        if ready.get("reason") == "Evaluated" or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert ready.get("status") == "True" and ready.get("reason") == "Evaluated", budget.get("status")
    assert float(budget["status"]["currentSpend"]) > 0 and budget["status"]["state"] in ("OK", "Warning",
                                                                                          "ForecastExceeded", "Exceeded")
    shown = kube.kubectl("get", "budget", "shop-monthly", "-n", OPERATOR_NS).stdout.splitlines()
    print(f"\n$ kubectl get budget shop-monthly -n {OPERATOR_NS}\n" + "\n".join(shown))
    assert shown[0].split() == ["NAME", "READY", "AMOUNT", "CURRENCY", "PERIOD", "SPENT", "USED%", "FORECAST",
                                "STATE", "AGE"]
    row, status = shown[1].split(), budget["status"]          # the printer columns show the evaluated values
    assert row[1:9] == ["True", "2500", "USD", "Monthly", status["currentSpend"], str(status["usedPercent"]),
                        status["forecastedSpend"], status["state"]]


def _get_when_up(url: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=10).read().decode()
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def check_events_metrics_and_health(kube, operator: OperatorProcess) -> None:
    events = get_json(kube, "events", "-n", OPERATOR_NS,
                      "--field-selector", f"involvedObject.name={POLICY},involvedObject.kind=FinOpsPolicy")["items"]
    reasons = [e["reason"] for e in events]
    assert "RunSucceeded" in reasons, reasons
    summary = next(e for e in events if e["reason"] == "RunSucceeded")
    assert "2 findings" in summary["message"] and "SavingsOpportunities:" in summary["message"]
    metrics = _get_when_up(f"http://127.0.0.1:{operator.metrics_port}/metrics")
    assert f'finops_policy_runs_total{{policy="{OPERATOR_NS}/{POLICY}",result="success"}} 1.0' in metrics
    assert f'finops_findings{{policy="{OPERATOR_NS}/{POLICY}",type="rightsize-cpu",verdict="allow"}} 1.0' in metrics
    assert f'finops_policy_last_success_timestamp_seconds{{policy="{OPERATOR_NS}/{POLICY}"}}' in metrics
    assert "process_resident_memory_bytes" in metrics and "process_cpu_seconds_total" in metrics
    lines = [json.loads(line) for line in operator.text().splitlines() if line.startswith("{")]
    run = [line for line in lines if line["message"].startswith("running policy")]
    assert run and all(line["object"]["namespace"] == OPERATOR_NS and line["object"]["name"] == POLICY for line in run)
    opp = next(o for o in opportunities(kube))
    assert opp["spec"]["cluster"] == "e2e", "the cluster name comes from FINOPS_CLUSTER_NAME"
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}/healthz", timeout=10) as health:
        assert health.status == 200
    refused = [line for line in operator.text().splitlines() if " 403 " in line or "Forbidden" in line]
    assert refused == [], "the chart's ServiceAccount was refused something the operator needs:\n" + "\n".join(refused)


def test_failing_policy_reports_and_does_not_block_others(world, operator, e2e_prometheus):
    """A policy whose Prometheus is down and one with an invalid spec; the good policy still runs."""
    kube, _, remote, _ = world
    broken = policy_manifest("http://finops:s3cr3t-pw@127.0.0.1:9", remote)     # credentials in the URL
    broken["metadata"]["name"] = "broken"
    broken["spec"]["mode"] = "DryRun"
    # Valid for the CRD schema (Prometheus is optional there), not for the operator: no usage source.
    invalid = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
               "metadata": {"name": "invalid", "namespace": OPERATOR_NS},
               "spec": {"mode": "DryRun", "scope": {"namespaces": [SHOP]}}}
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([broken, invalid]))
    kube.kubectl("annotate", "--overwrite", "fpol", "broken", "-n", OPERATOR_NS, "finops.dev/run-now=x")
    annotate_run_now(kube, "3")

    def reason(name: str):
        body = get_json(kube, "fpol", name, "-n", OPERATOR_NS)
        ready = {c["type"]: c for c in body.get("status", {}).get("conditions", [])}.get("Ready")
        return ready if ready and ready["reason"] not in ("Scheduled",) else None

    ready = operator.wait_for("the broken policy's run", lambda: reason("broken"), timeout=120)
    assert ready["status"] == "False" and ready["reason"] == "TransientError"
    assert "127.0.0.1:9" in ready["message"] and "retry 1 at" in ready["message"]
    body = get_json(kube, "fpol", "broken", "-n", OPERATOR_NS)
    assert '"attempt":1' in body["metadata"]["annotations"]["finops.dev/retry"]
    retry = json.loads(body["metadata"]["annotations"]["finops.dev/retry"])
    assert body["status"]["nextRunTime"] == retry["at"], "the retry is the next run"
    assert body["status"]["scopeErrors"][0]["scope"] == "inventory"
    sources = {c["type"]: c for c in body["status"]["conditions"]}["DataSourcesReady"]
    assert sources["status"] == "False" and sources["reason"] == "DataSourceUnavailable"
    events = get_json(kube, "events", "-n", OPERATOR_NS, "--field-selector", "involvedObject.name=broken")["items"]
    assert any(e["reason"] == "RunFailed" for e in events)
    for where, text in (("status", json.dumps(body["status"])), ("Events", json.dumps(events)),
                        ("the operator's log", operator.text())):
        assert "s3cr3t-pw" not in text, f"the Prometheus URL's password leaked into {where}"

    ready = operator.wait_for("the invalid policy's condition", lambda: reason("invalid"), timeout=60)
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.dataSources.prometheus.url" in ready["message"]
    events = get_json(kube, "events", "-n", OPERATOR_NS, "--field-selector", "involvedObject.name=invalid")["items"]
    assert any(e["reason"] == "InvalidSpec" and e["type"] == "Warning" for e in events)

    good = operator.wait_for("the good policy's run 3", handled(kube, "3"), timeout=120)
    assert {c["type"]: c for c in good["status"]["conditions"]}["Ready"]["status"] == "True"
    assert operator.alive()


def test_live_scan_cli_reads_the_same_cluster(world, e2e_prometheus):
    """`finops scan --kubeconfig PATH --prometheus URL --history 7d`: the operator's sources from the CLI."""
    import subprocess
    import sys
    kube, _, _, tmp = world
    policy = tmp / "policy.yaml"
    policy.write_text(yaml.safe_dump({"guardrails": {"maxSingleChangePercent": 95}}))
    proc = subprocess.run([sys.executable, "-m", "finops_operator.cli.main", "scan", "--kubeconfig", str(kube.kubeconfig),
                           "--prometheus", e2e_prometheus.url, "--history", "7d", "--policy", str(policy),
                           "--output", "json"], capture_output=True, text=True, timeout=120, env=kube.environ(),
                          check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    found = {(f["type"], f["target"]) for f in data["findings"]}
    assert ("rightsize-cpu", f"Deployment/{SHOP}/web/app") in found, data["findings"]
    assert ("rightsize-memory", f"StatefulSet/{SHOP}/db/postgres") in found
    assert "2 containers with usage" in proc.stderr
    bad = subprocess.run([sys.executable, "-m", "finops_operator.cli.main", "scan", "--kubeconfig", str(kube.kubeconfig),
                          "--history", "7d"], capture_output=True, text=True, timeout=60, env=kube.environ(),
                         check=False)
    assert bad.returncode == 2 and "--prometheus" in bad.stderr     # errors go to stderr, one line
