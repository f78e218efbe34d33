"""The CRDs on a real kube-apiserver: established, defaults, validation messages, printer columns.

Every invalid object is sent with ``kubectl create --dry-run=server`` so the
apiserver runs its full validation (OpenAPI schema, CEL rules, defaulting)
without storing anything; each case asserts the message a person would read.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from finops_operator import settings
from tests.support.fixtures_operator import wait_established

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CRDS = ("finopspolicies.finops.dev", "budgets.finops.dev", "savingsopportunities.finops.dev")


@pytest.fixture(scope="module")
def crds(kube):
    """``kubectl apply -f crds/`` exactly as the README says, then wait until established."""
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    wait_established(kube, CRDS)
    return kube


def example(name: str, namespace: str) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "examples" / "crs" / name).read_text())
    doc["metadata"]["namespace"] = namespace
    return doc


def policy(namespace: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
            "metadata": {"name": "p", "namespace": namespace}, "spec": {"mode": "DryRun", **spec}}


def opportunity(namespace: str, name: str = "cpu-rightsizing-0123456789abcdef") -> dict[str, Any]:
    return {"apiVersion": "finops.dev/v1alpha1", "kind": "SavingsOpportunity",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"detector": "cpu-rightsizing", "type": "rightsize-cpu", "title": "api: CPU 2 -> 500m",
                     "target": {"kind": "container", "name": "app", "namespace": "shop",
                                "workload": {"kind": "Deployment", "name": "api"}},
                     "policyRef": {"name": "p"}}}


def create(kube, doc: dict[str, Any], *, dry_run: bool = True):
    args = ["create", "-o", "json", "-f", "-"] + (["--dry-run=server"] if dry_run else [])
    return kube.kubectl(*args, input=yaml.safe_dump(doc), check=False)


def created(kube, doc: dict[str, Any], *, dry_run: bool = True) -> dict[str, Any]:
    proc = create(kube, doc, dry_run=dry_run)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_crds_are_established_with_names_and_category(crds):
    out = crds.kubectl("api-resources", "--api-group=finops.dev", "-o", "wide").stdout
    for line in ("finopspolicies", "fpol", "budgets", "fbud", "savingsopportunities", "fsav"):
        assert line in out
    assert out.count("finops") >= 3 and "true" in out   # namespaced, category column
    assert crds.kubectl("get", "finops", "-A").returncode == 0   # the category resolves


def test_minimal_policy_gets_the_settings_defaults(crds, kube_namespace):
    obj = created(crds, policy(kube_namespace))
    spec = obj["spec"]
    assert spec["schedule"] == "0 6 * * *" and spec["timeZone"] == "UTC" and spec["groupBy"] == "namespace"
    assert spec["scope"]["excludeNamespaces"] == ["kube-system", "kube-public", "kube-node-lease"]
    # What the apiserver filled in is exactly what settings.py would use.
    assert settings.settings_from_document(obj) == settings.PolicySettings(mode=settings.Mode.DRY_RUN)
    assert spec["detectors"]["memory"]["minMib"] == 32 and spec["guardrails"]["maxOpenPrs"] == 5


def test_examples_are_accepted_with_defaults_filled(crds, kube_namespace):
    pol = created(crds, example("finopspolicy.yaml", kube_namespace))["spec"]
    assert pol["detectors"]["cpu"]["minMillicores"] == 10          # not in the example: defaulted
    assert pol["guardrails"]["changeWindows"][0]["start"] == "09:00"
    assert pol["git"]["tokenSecretRef"] == {"name": "finops-github-token", "key": "token"}
    assert pol["dataSources"]["prometheus"]["timeoutSeconds"] == 60
    loaded = settings.settings_from_document({"spec": pol})
    assert loaded.guardrails.change_windows[0].time_zone == "Europe/Berlin"
    bud = created(crds, example("budget.yaml", kube_namespace))["spec"]
    assert bud["thresholds"][0] == {"percent": 80, "action": "Notify", "forecasted": False}
    assert bud["currency"] == "USD" and bud["period"] == "Monthly"
    minimal = {"apiVersion": "finops.dev/v1alpha1", "kind": "Budget",
               "metadata": {"name": "b", "namespace": kube_namespace}, "spec": {"amount": "100"}}
    assert created(crds, minimal)["spec"]["thresholds"] == [
        {"percent": 80, "action": "Notify", "forecasted": False},
        {"percent": 100, "action": "Alert", "forecasted": False}]
    opp = created(crds, opportunity(kube_namespace))
    assert opp["spec"]["target"]["workload"] == {"kind": "Deployment", "name": "api"}


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Copy of ``doc`` with the dotted ``path`` set (``None`` deletes it)."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {}) if not key.isdigit() else node[int(key)]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return doc


GITHUB = {"repository": "acme/gitops", "tokenSecretRef": {"name": "tok"}}
WINDOW = {"days": [0], "start": "09:00", "end": "09:00", "timeZone": "Europe/Berlin"}

INVALID = [
    # (id, example or builder, dotted path, value, expected message parts)
    ("bad-cron", "policy", "spec.schedule", "every day at six",
     ["spec.schedule", "schedule must be a 5-field cron expression"]),
    ("cron-out-of-range", "policy", "spec.schedule", "0 25 * * *",
     ["schedule must be a 5-field cron expression", "hour 0-23"]),
    ("unknown-time-zone", "policy", "spec.timeZone", "Mars/Olympus",
     ["spec.timeZone", "time zone must be an IANA name"]),
    ("legacy-time-zone-in-window", "policy", "spec.guardrails.changeWindows",
     [dict(WINDOW, end="17:00", timeZone="CET")], ["changeWindows[0].timeZone", "IANA name"]),
    ("percent-over-100", "policy", "spec.guardrails.maxSingleChangePercent", 150,
     ["spec.guardrails.maxSingleChangePercent", "should be less than or equal to 100"]),
    ("float-dollars", "policy", "spec.guardrails.maxSingleChangeDollars", 12.5,
     ["spec.guardrails.maxSingleChangeDollars", "must be of type integer"]),
    ("enum", "policy", "spec.mode", "Yolo",
     ['spec.mode: Unsupported value: "Yolo"', '"DryRun"', '"PullRequest"', '"RequireApproval"']),
    ("pr-mode-needs-git", "policy", "spec.mode", "PullRequest",
     ["spec.git is required when spec.mode is PullRequest or RequireApproval"]),
    ("github-repository-form", "policy", "spec.git", dict(GITHUB, repository="https://github.com/acme/gitops"),
     ["git.repository must be written owner/name"]),
    ("github-needs-token", "policy", "spec.git", {"repository": "acme/gitops"},
     ["git.tokenSecretRef (name and key of a Secret holding a GitHub token) is required"]),
    ("change-window-empty", "policy", "spec.guardrails.changeWindows", [WINDOW],
     ["changeWindows[0]", "end must differ from start"]),
    ("approval-above-max", "policy", "spec.guardrails.approvalAboveDollars", 900,
     ["approvalAboveDollars must not exceed guardrails.maxSingleChangeDollars"]),
    ("time-window-backwards", "policy", "spec.detectors.cpu.timeWindow", {"startHour": 20, "endHour": 8},
     ["timeWindow.endHour must be later than timeWindow.startHour"]),
    ("history-window", "policy", "spec.dataSources.prometheus", {"url": "http://p:9090", "historyWindow": "two weeks"},
     ["historyWindow must be a duration such as 14d"]),
    ("history-window-huge", "policy", "spec.dataSources.prometheus",
     {"url": "http://p:9090", "historyWindow": "99999999999999w"}, ["historyWindow must be a duration such as 14d"]),
    ("history-window-over-90d", "policy", "spec.dataSources.prometheus",
     {"url": "http://p:9090", "historyWindow": "3000w"}, ["spec.dataSources.prometheus.historyWindow",
                                                          "historyWindow must be at most 90d"]),
    ("history-window-91d-in-parts", "policy", "spec.dataSources.prometheus",
     {"url": "http://p:9090", "historyWindow": "12w7d1ms"}, ["historyWindow must be at most 90d"]),
    ("history-shorter-than-step", "policy", "spec.dataSources.prometheus",
     {"url": "http://p:9090", "historyWindow": "10m", "stepSeconds": 3600},
     ["prometheus.historyWindow must be at least one step"]),
    ("header-crlf", "policy", "spec.dataSources.prometheus",
     {"url": "http://p:9090", "headers": {"X-Scope-OrgID": "a\r\nX-Injected: 1"}},
     ["spec.dataSources.prometheus.headers[X-Scope-OrgID]", "without control characters"]),
    ("header-name", "policy", "spec.dataSources.prometheus",
     {"url": "http://p:9090", "headers": {"X Scope": "a"}}, ["header names must be HTTP tokens"]),
    ("percentile-above-100", "policy", "spec.detectors.cpu.percentile", 101,
     ["spec.detectors.cpu.percentile", "should be less than or equal to 100"]),
    ("percentile-below-50", "policy", "spec.detectors.memory.percentile", 49,
     ["spec.detectors.memory.percentile", "should be greater than or equal to 50"]),
    ("git-plain-path", "policy", "spec.git", {"provider": "Git", "repository": "/etc"},
     ["git.repository must be a clone URL"]),
    ("authorization-header", "policy", "spec.dataSources.prometheus",
     {"url": "http://p:9090", "headers": {"Authorization": "Bearer x"}}, ["headers must not carry Authorization"]),
    ("cur-needs-athena", "policy", "spec.dataSources.aws", {"region": "eu-central-1", "costSource": "CUR"},
     ["aws.cur (engine DuckDB: bucket, exportName; engine Athena: database, table, outputLocation) is required"]),
    ("cur-duckdb-needs-bucket", "policy", "spec.dataSources.aws",
     {"region": "eu-central-1", "costSource": "CUR", "cur": {"exportName": "cur2"}},
     ["aws.cur.engine DuckDB needs bucket and exportName"]),
    ("cur-athena-needs-table", "policy", "spec.dataSources.aws",
     {"region": "eu-central-1", "costSource": "CUR", "cur": {"engine": "Athena", "database": "cur"}},
     ["aws.cur.engine Athena needs database, table and outputLocation"]),
    ("bad-region", "policy", "spec.dataSources.aws", {"region": "Frankfurt"},
     ["spec.dataSources.aws.region", "should match"]),
    ("label-selector-values", "policy", "spec.scope.namespaceSelector",
     {"matchExpressions": [{"key": "team", "operator": "In"}]}, ["operators In and NotIn need values"]),
    ("negative-amount", "budget", "spec.amount", "-100",
     ["spec.amount", 'amount must be a positive decimal such as "5000" or "1250.50"']),
    ("zero-amount", "budget", "spec.amount", "0.00", ["amount must be greater than zero"]),
    ("not-usd", "budget", "spec.currency", "EUR", ["only USD is supported until other currencies are"]),
    ("fiscal-day-31", "budget", "spec.startDate", "2026-01-31", ["startDate must be a date YYYY-MM-DD with a day from 01 to 28"]),
    ("budget-zone", "budget", "spec.timeZone", "CET", ["time zone must be an IANA name"]),
    ("missing-amount", "budget", "spec.amount", None, ["spec.amount: Required value"]),
    ("threshold-percent", "budget", "spec.thresholds", [{"percent": 0, "action": "Notify"}],
     ["spec.thresholds[0].percent", "should be greater than or equal to 1"]),
    ("thresholds-unsorted", "budget", "spec.thresholds",
     [{"percent": 100, "action": "Alert"}, {"percent": 80, "action": "Notify"}], ["thresholds must be sorted by percent"]),
    ("thresholds-duplicate", "budget", "spec.thresholds",
     [{"percent": 80, "action": "Notify"}, {"percent": 80, "action": "Alert"}], ["thresholds must be unique"]),
    ("bad-quantity", "budget", "spec.freezeGrowth.hard", {"requests.memory": "lots"},
     ["freezeGrowth.hard values must be Kubernetes quantities such as 500m, 4, 16Gi"]),
    ("freeze-needs-namespaces", "budget", "spec.scope", {"labels": {"team": "payments"}},
     ["a FreezeGrowth threshold needs scope.namespaces"]),
    ("container-target-needs-workload", "opportunity", "spec.target.workload", None,
     ["a container target needs target.namespace and target.workload"]),
    ("opportunity-missing-detector", "opportunity", "spec.detector", None, ["spec.detector: Required value"]),
    ("opportunity-type", "opportunity", "spec.type", "gold-plating", ['spec.type: Unsupported value: "gold-plating"']),
]


def base_document(kind: str, namespace: str) -> dict[str, Any]:
    if kind == "policy":
        return policy(namespace)
    if kind == "budget":
        return example("budget.yaml", namespace)
    return opportunity(namespace)


@pytest.mark.parametrize("case, kind, path, value, messages", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_objects_are_rejected_with_a_clear_message(crds, kube_namespace, case, kind, path, value, messages):
    doc = base_document(kind, kube_namespace)
    if case == "yen-decimals":
        doc["spec"]["amount"] = "1250.50"
    created(crds, doc)                                     # the base document is valid
    proc = create(crds, _set(doc, path, value))
    assert proc.returncode != 0, f"{case}: accepted but should be rejected"
    for part in messages:
        assert part in proc.stderr, f"{case}: {part!r} not in:\n{proc.stderr}"
    if case == "bad-cron":   # the message, not a 900-character regex
        assert "should match" not in proc.stderr and len(proc.stderr) < 700, proc.stderr


@pytest.mark.parametrize("window", ["90d", "12w6d", "2160h", "1h", "14d"])
def test_history_windows_up_to_90_days_are_accepted(crds, kube_namespace, window):
    doc = policy(kube_namespace, dataSources={"prometheus": {"url": "http://p:9090", "historyWindow": window}})
    assert created(crds, doc)["spec"]["dataSources"]["prometheus"]["historyWindow"] == window


def test_target_is_immutable_and_approval_is_an_annotation(crds, kube_namespace):
    created(crds, opportunity(kube_namespace), dry_run=False)
    name = "savingsopportunity/cpu-rightsizing-0123456789abcdef"
    patch = json.dumps({"spec": {"target": {"name": "sidecar"}}})
    proc = crds.kubectl("patch", name, "-n", kube_namespace, "--type=merge", "-p", patch, check=False)
    assert proc.returncode != 0 and "spec.target is immutable" in proc.stderr
    crds.kubectl("annotate", name, "-n", kube_namespace, "finops.dev/approved=true")
    got = json.loads(crds.kubectl("get", name, "-n", kube_namespace, "-o", "json").stdout)
    assert got["metadata"]["annotations"]["finops.dev/approved"] == "true"


def patch_status(kube, namespace: str, resource: str, status: dict[str, Any]) -> None:
    kube.kubectl("patch", resource, "-n", namespace, "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": status}))


READY = {"type": "Ready", "status": "True", "reason": "RunSucceeded", "message": "scanned 3 namespaces",
         "lastTransitionTime": "2026-01-05T06:00:00Z", "observedGeneration": 1}


def test_status_subresource_and_printer_columns(crds, kube_namespace):
    ns = kube_namespace
    created(crds, policy(ns, schedule="0 6 * * MON-FRI", timeZone="Europe/Berlin"), dry_run=False)
    created(crds, example("budget.yaml", ns), dry_run=False)
    created(crds, opportunity(ns), dry_run=False)
    patch_status(crds, ns, "finopspolicy/p", {
        "observedGeneration": 1, "conditions": [READY], "lastRunTime": "2026-01-05T06:00:00Z",
        "nextRunTime": "2030-01-06T05:00:00Z", "findings": 7, "estimatedMonthlySavings": "1234.50",
        "openPullRequests": 2})
    patch_status(crds, ns, "budget/payments-monthly", {
        "conditions": [dict(READY, reason="Evaluated", message="ok")], "currentSpend": "9000.00",
        "usedPercent": 72, "forecastedSpend": "13100.00", "forecastPercent": 105})
    patch_status(crds, ns, "savingsopportunity/cpu-rightsizing-0123456789abcdef", {
        "state": "Proposed", "estimatedMonthlySavings": "41.20", "confidencePercent": 88, "riskPercent": 12,
        "changes": [{"field": "resources.requests.cpu", "before": "2", "after": "500m"}],
        "evidence": {"p95Millicores": 412, "coveragePercent": 97, "window": "14d"},
        "decision": {"verdict": "allow", "reasons": [{"rule": "max-single-change", "verdict": "allow",
                                                        "message": "41.20 <= 500"}]},
        "pullRequest": {"url": "https://github.com/acme/gitops/pull/17", "number": 17, "branch": "finops/rightsize-shop"},
        "history": [{"at": "2026-01-05T06:00:00Z", "to": "Detected", "reason": "found"},
                    {"at": "2026-01-05T06:01:00Z", "from": "Detected", "to": "Proposed", "reason": "PR opened"}]})

    table = crds.kubectl("get", "finopspolicies,budgets,savingsopportunities", "-n", ns).stdout
    lines = [line.split() for line in table.splitlines()]
    header_text = "\n".join(l for l in table.splitlines() if l.startswith("NAME"))
    for column in ("READY", "MODE", "SCHEDULE", "LAST RUN", "FINDINGS", "SAVINGS/MO", "AMOUNT", "CURRENCY",
                   "PERIOD", "SPENT", "USED%", "FORECAST", "TYPE", "WORKLOAD", "TARGET", "STATE", "PR"):
        assert column in header_text, f"{column} missing from\n{table}"
    assert "TIME ZONE" not in header_text            # wide-only
    flat = [" ".join(l) for l in lines]
    assert any(l.startswith("finopspolicy.finops.dev/p True DryRun 0 6 * * MON-FRI") and " 7 1234.50 " in l
               for l in flat), table
    assert any("payments-monthly True 12500.00 USD Monthly 9000.00 72 13100.00" in l for l in flat), table
    assert any("rightsize-cpu api app Proposed 41.20 https://github.com/acme/gitops/pull/17" in l for l in flat), table

    wide = crds.kubectl("get", "fpol,fbud,fsav", "-n", ns, "-o", "wide").stdout
    for column in ("TIME ZONE", "NEXT RUN", "OPEN PRS", "REASON", "FORECAST%", "DETECTOR", "CONFIDENCE%", "RISK%"):
        assert column in wide, f"{column} missing from wide output\n{wide}"
    assert "Europe/Berlin" in wide and "RunSucceeded" in wide and "cpu-rightsizing" in wide

    # The category lists all three kinds; status is only writable through /status.
    assert crds.kubectl("get", "finops", "-n", ns, "-o", "name").stdout.count("\n") == 3
    crds.kubectl("patch", "finopspolicy/p", "-n", ns, "--type=merge", "-p", json.dumps({"status": {"findings": 99}}))
    got = json.loads(crds.kubectl("get", "finopspolicy/p", "-n", ns, "-o", "json").stdout)
    assert got["status"]["findings"] == 7 and got["metadata"]["generation"] == 1


def test_status_is_validated_too(crds, kube_namespace):
    created(crds, opportunity(kube_namespace), dry_run=False)
    proc = crds.kubectl("patch", "savingsopportunity/cpu-rightsizing-0123456789abcdef", "-n", kube_namespace,
                        "--subresource=status", "--type=merge",
                        "-p", json.dumps({"status": {"state": "Done", "estimatedMonthlySavings": 41.2}}), check=False)
    assert proc.returncode != 0
    assert 'status.state: Unsupported value: "Done"' in proc.stderr
    assert "status.estimatedMonthlySavings: Invalid value: \"number\"" in proc.stderr
