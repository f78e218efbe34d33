"""Two operators on one policy (defect 14): a run-now is executed exactly once.

Two ``finops run`` processes, both active (``--standalone``: the worst case, no kopf
peering to put one on standby), run as the chart's ServiceAccount against the real
kube-apiserver, with a one-second timer. Each run-now is claimed by one of them through
the policy's Lease; the other is refused while the Lease is held and, once it has
expired, reads the policy fresh and finds the run-now handled. The policy's Prometheus
URL carries credentials and is down: the run fails fast (transient, retried in an hour),
and neither status, Events nor logs show the password (defect 13).
"""
from __future__ import annotations

import json
import time
import urllib.request

import pytest
import yaml

from tests.support.fixtures_operator import OperatorProcess, get_json, install_chart

pytestmark = pytest.mark.e2e
NS = "finops-replicas"
TEAM = "replicas-shop"
RELEASE = "replicas"
POLICY = "twice"
LEASE_SECONDS = 5
PASSWORD = "hunter2-e2e"


@pytest.fixture(scope="module")
def replicas(kube, tmp_path_factory):
    sa = install_chart(kube, RELEASE, NS)
    if kube.kubectl("get", "namespace", TEAM, check=False).returncode != 0:
        kube.kubectl("create", "namespace", TEAM)
    tmp = tmp_path_factory.mktemp("replicas")
    ops = []
    for name in ("replica-a", "replica-b"):
        env = {**kube.environ(sa), "FINOPS_OPERATOR_NAMESPACE": NS, "FINOPS_TIMER_INTERVAL_SECONDS": "1",
               "FINOPS_WORKDIR": str(tmp / name), "FINOPS_CLUSTER_NAME": "replicas", "FINOPS_POD_NAME": name,
               "FINOPS_LEASE_SECONDS": str(LEASE_SECONDS), "FINOPS_RETRY_BASE_SECONDS": "3600",
               "FINOPS_LOG_FORMAT": "json", "FINOPS_LOG_LEVEL": "DEBUG"}
        ops.append(OperatorProcess(env=env, log=tmp / f"{name}.log", namespace=NS).start())
    yield kube, ops
    for op in ops:
        op.stop()


def json_lines(op: OperatorProcess) -> list[dict]:
    out = []
    for line in op.text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def runs_started(ops: list[OperatorProcess]) -> list[str]:
    return [f"{op.env['FINOPS_POD_NAME']}: {line['message']}" for op in ops for line in json_lines(op)
            if line["message"].startswith("running policy") and (line.get("object") or {}).get("name") == POLICY]


def handled(kube, value: str):
    def check():
        body = get_json(kube, "fpol", POLICY, "-n", NS)
        return body if body["metadata"].get("annotations", {}).get("finops.dev/run-now-handled") == value else None
    return check


def test_two_operators_run_each_run_now_exactly_once(replicas):
    kube, ops = replicas
    policy = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy", "metadata": {"name": POLICY, "namespace": NS},
              "spec": {"mode": "DryRun", "schedule": "0 6 * * *", "scope": {"namespaces": [TEAM]},
                       "dataSources": {"prometheus": {"url": f"http://finops:{PASSWORD}@127.0.0.1:9",
                                                      "historyWindow": "1d"}}}}
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(policy))
    for op in ops:   # both are active: each validates the policy itself
        op.wait_for("the policy validated by " + op.env["FINOPS_POD_NAME"],
                    lambda op=op: any(line["message"].startswith("policy valid") for line in json_lines(op)))
    for round_, value in enumerate(("1", "2", "3"), start=1):
        kube.kubectl("annotate", "--overwrite", "fpol", POLICY, "-n", NS, f"finops.dev/run-now={value}")
        ops[0].wait_for(f"run-now={value} handled", handled(kube, value), timeout=90)
        time.sleep(LEASE_SECONDS + 4)    # past the Lease: the other replica may claim it, and must not run again
        started = runs_started(ops)
        assert len(started) == round_, f"after run-now {value}: {started}"
    assert all(op.alive() for op in ops)

    total = 0.0
    for op in ops:
        text = urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics", timeout=10).read().decode()
        total += sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith(f'finops_policy_runs_total{{policy="{NS}/{POLICY}"'))
        assert "process_resident_memory_bytes" in text
    assert total == 3.0, "three runs in all, across both operators"

    lease = get_json(kube, "lease", "-n", NS)["items"]
    assert [item["metadata"]["annotations"]["finops.dev/policy"] for item in lease] == [f"{NS}/{POLICY}"]
    assert lease[0]["spec"]["holderIdentity"] in ("replica-a", "replica-b")

    body = get_json(kube, "fpol", POLICY, "-n", NS)
    ready = {c["type"]: c for c in body["status"]["conditions"]}["Ready"]
    assert ready["reason"] == "TransientError" and "127.0.0.1:9" in ready["message"], ready
    events = get_json(kube, "events", "-n", NS, "--field-selector", f"involvedObject.name={POLICY}")["items"]
    assert any(e["reason"] == "RunFailed" for e in events)
    assert PASSWORD in json.dumps(body["spec"]), "the test puts it in the spec"
    for where, text in [("status", json.dumps(body["status"])),
                        ("Events", json.dumps(events))] + [(f"{op.env['FINOPS_POD_NAME']}'s log", op.text()) for op in ops]:
        assert PASSWORD not in text, f"the Prometheus password leaked into {where}"
    # Lines from module loggers (not kopf's per-object logger) written inside a run name the policy too:
    # the Prometheus connection attempts are made by urllib3 in the run's thread.
    run_lines = [line for op in ops for line in json_lines(op)
                 if not line["logger"].startswith("kopf") and "127.0.0.1:9" in line["message"]]
    assert run_lines and all(line.get("object", {}).get("name") == POLICY for line in run_lines), run_lines[:3]

def test_deleting_the_policy_deletes_its_lease(replicas):
    kube, ops = replicas
    kube.kubectl("delete", "fpol", POLICY, "-n", NS, "--wait=true", "--timeout=60s")
    ops[0].wait_for("the run Lease deleted",
                    lambda: get_json(kube, "lease", "-n", NS)["items"] == [], timeout=60)
