"""FinOpsReport generation on a real kube-apiserver, one slot after another with a test clock: each report is a
ConfigMap owned by the FinOpsReport, the status lists the ones retention keeps and the others are deleted; a
slot generated again (a run interrupted before its status was written) reuses the stored report; a report too
large for a ConfigMap is refused with a message, and nothing is stored."""
from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from finops_operator.api.report import read_report
from finops_operator.api.reportgen import Rendered
from finops_operator.api.reportrun import due_slot, generate
from finops_operator.api.reportstore import ReportStore, ReportTooLarge, report_config_map
from finops_operator.api.wiring import api_client_from

from tests.support.fixtures_operator import wait_established

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def crds(kube):
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    wait_established(kube, ("finopsreports.finops.dev", "savingsopportunities.finops.dev"))
    return kube


def make_report(kube, ns: str, spec: dict) -> dict:
    body = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsReport", "metadata": {"name": "daily", "namespace": ns},
            "spec": spec}
    kube.kubectl("apply", "-f", "-", input=json.dumps(body))
    return json.loads(kube.kubectl("get", "finopsreport/daily", "-n", ns, "-o", "json").stdout)


def config_maps(kube, ns: str) -> list[str]:
    listed = json.loads(kube.kubectl("get", "configmaps", "-n", ns, "-l", "finops.dev/report=daily",
                                     "-o", "json").stdout)
    return sorted(i["metadata"]["name"] for i in listed["items"])


def test_slots_are_stored_pruned_by_retention_and_reused_when_generated_again(crds, kube_namespace):
    ns = kube_namespace
    body = make_report(crds, ns, {"schedule": "0 6 * * *", "retention": {"count": 2}})
    spec = read_report(body, operator_ns="elsewhere")
    api = api_client_from(str(crds.kubeconfig))
    status: dict = {}
    try:
        for day in range(4):
            now = T0 + timedelta(days=day, minutes=1)
            slot = due_slot(spec, status, T0 - timedelta(hours=1), now)
            assert slot == T0 + timedelta(days=day)
            status = generate(api, spec, slot, status, now)
            assert due_slot(spec, status, T0 - timedelta(hours=1), now) is None
        again = generate(api, spec, slot, {**status, "lastSlot": None}, now + timedelta(seconds=5))
    finally:
        api.close()
    dates = [r["date"] for r in status["reports"]]
    assert dates == ["2026-12-03-0600", "2026-12-02-0600"]
    assert config_maps(crds, ns) == sorted(report_config_map("daily", d) for d in dates)
    assert again["lastReport"] == status["lastReport"], "a slot generated again stored a second report"
    cm = json.loads(crds.kubectl("get", "configmap", report_config_map("daily", dates[0]), "-n", ns,
                                 "-o", "json").stdout)
    assert cm["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    assert status["lastReport"]["headline"]["opportunities"] == 0
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Ready": "True"}


def test_a_report_over_the_bound_is_refused_and_nothing_is_stored(crds, kube_namespace):
    ns = kube_namespace
    spec = read_report(make_report(crds, ns, {"schedule": "@daily"}), operator_ns="elsewhere")
    noise = os.urandom(1024 * 1024).hex()                    # 4 bits a character: about 1 MiB after gzip
    rendered = Rendered({}, T0, T0, noise, "{}", "x")
    api = api_client_from(str(crds.kubeconfig))
    try:
        with pytest.raises(ReportTooLarge) as caught:
            ReportStore(api).save(spec, "2026-11-30-0600", rendered, T0)
    finally:
        api.close()
    assert "KiB compressed" in str(caught.value) and caught.value.field == "spec.scope"
    assert config_maps(crds, ns) == []
