"""PR title, body and commit message for a realistic change set."""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from finops_operator.actuation.plan import plan_change_sets
from finops_operator.actuation.providers import changeset_fingerprint, parse_marker
from finops_operator.ledger import REOPEN_PROMISE
from finops_operator.actuation.render import (MAX_BODY_CHARS, cost_row, render_body, render_commit_message,
                                              render_title)
from finops_operator.guardrails import GuardrailContext, evaluate
from finops_operator.models import ChangeSet, Decision, Reason, Verdict
from finops_operator.settings import load_policy
from tests.support.fixtures_guardrails import container_finding, node_group_finding, volume_finding

GOLDEN = Path(__file__).parent / "golden" / "pr_body.md"
GENERATED = datetime(2024, 6, 12, 7, 30, tzinfo=timezone.utc)


def cpu_evidence(p95: float, new: float, current: float = 1.0, **extra) -> dict:
    return {"workload": "x", "unit": "cores", "replicas": 3, "replicas_basis": "spec.replicas", "samples": 4000,
            "expected_samples": 4033, "coverage": 0.9918, "history_days": 14.0, "p50": p95 * 0.6, "p90": p95 * 0.9,
            "p95": p95, "p99": p95 * 1.1, "max": p95 * 1.4, "formula": "p95 x (1 + 15%)", "current_request": current, "new_request": new,
            "limit_policy": "KeepRatio", "oom_kills": 0, "restarts": 0, "throttled_ratio": 0.01,
            "savings_formula": "(before - after) cores x rate x 730 h x replicas", **extra}


def realistic_change_set() -> ChangeSet:
    api = container_finding("payments", "api", "app", cpu=("1", "250m"), savings=55.84, confidence=0.92, risk=0.18,
                            cost_before=74.46, cost_after=18.62, evidence=cpu_evidence(0.2, 0.25, github_token="ghp_" + "a" * 36,
                                                  source_hint="https://bot:s3cr3tpass@git.example.com/gitops.git"))
    envoy = container_finding("payments", "api", "envoy", cpu=("500m", "100m"), savings=14.9, confidence=0.7,
                              risk=0.41, cost_before=18.62, cost_after=3.72, evidence=cpu_evidence(0.06, 0.1, current=0.5))
    ledger = container_finding(
        "payments", "ledger", "app", memory=("512Mi", "768Mi"), savings=-6.2, confidence=0.85, risk=0.1,
        evidence={"unit": "bytes", "replicas": 2, "p99": 540 * 2**20, "max": 600 * 2**20, "oom_kills": 3,
                  "restarts": 3, "last_terminated_reason": "OOMKilled",
                  "formula": "max(peak, limit) x (1 + 30%) after OOM kills", "current_request": 512 * 2**20,
                  "new_request": 768 * 2**20,
                  "hpa": {"name": "ledger", "min_replicas": 2, "max_replicas": 6, "target_cpu_utilization": 70}},
        cost_before=12.4, cost_after=18.6)
    ledger.notes.append("OOM-killed 3 times in the window: raised, never cut")
    missing = container_finding("payments", "batch", "app", savings=9.0)
    findings = [api, envoy, ledger, missing]
    policy = load_policy({"guardrails": {"maxSingleChangePercent": 75, "changeWindows": [
        {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00", "timeZone": "Europe/Berlin"}]}})
    decisions = evaluate(findings, policy.guardrails, GuardrailContext(now=GENERATED, approved=frozenset({envoy.id})))
    [cs] = plan_change_sets(findings, decisions, policy, open_prs=0).change_sets
    cs.skipped = {missing.id: "Deployment/payments/batch is not defined in the GitOps repository "
                              "(add the finops.dev/source annotation)"}
    return cs


def table(body: str, heading: str) -> list[str]:
    section = body.split(f"### {heading}", 1)[1].split("\n### ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_body_tables_total_marker_and_sections():
    cs = realistic_change_set()
    body = render_body(cs, cluster="prod-eu", generated_at=GENERATED)
    assert body.startswith(f"<!-- finops-operator:changeset=rightsize-payments fingerprint={changeset_fingerprint(cs)} "
                           f"savings={cs.monthly_savings:.2f} -->\n")
    assert REOPEN_PROMISE in body
    assert parse_marker(body) == ("rightsize-payments", changeset_fingerprint(cs))
    assert "**Saves an estimated $64.54 per month.** Cluster `prod-eu`, 3 findings, generated 2024-06-12 07:30 UTC." in body
    assert table(body, "What changes") == [
        "| `Deployment/payments/api/app` | `resources.requests.cpu` | `1` | `250m` |",
        "| `Deployment/payments/api/envoy` | `resources.requests.cpu` | `500m` | `100m` |",
        "| `Deployment/payments/ledger/app` | `resources.requests.memory` | `512Mi` | `768Mi` |",
    ]
    assert table(body, "Cost (estimated, USD per month)") == [
        "| `Deployment/payments/api/app` | $74.46 | $18.62 | -$55.84 |",
        "| `Deployment/payments/api/envoy` | $18.62 | $3.72 | -$14.90 |",
        "| `Deployment/payments/ledger/app` | $12.40 | $18.60 | +$6.20 |",
        "| **Total** | **$105.48** | **$40.94** | **-$64.54** |",
    ]
    assert table(body, "Confidence and risk")[1] == "| `Deployment/payments/api/envoy` | 70% (medium) | 41% (medium) | $14.90 |"
    assert "Lowest confidence 70% (medium), highest risk 41% (medium)." in body
    # evidence is prose, not a dict dump
    assert "Usage per replica over 14.0 days, 99% coverage (4000/4033 samples): p50 120m · p90 180m · p95 200m" in body
    assert "- Sizing: p95 x (1 + 15%) gives request 500m -> 100m\n" in body
    assert "- Sizing: max(peak, limit) x (1 + 30%) after OOM kills gives request 512Mi -> 768Mi\n" in body
    assert "Stability: 3 OOM kills, 3 restarts, last terminated: OOMKilled" in body
    assert "HPA ledger scales 2-6 replicas on CPU 70%" in body
    assert "Note: OOM-killed 3 times in the window: raised, never cut" in body
    assert "{'" not in body and "':" not in body
    # guardrail notes: merged across findings, approvals and raises explained
    assert "- **allow** (change-window) all changes: inside change window Mon,Tue,Wed,Thu,Fri 09:00-17:00 Europe/Berlin" in body
    assert "(approval) `Deployment/payments/api/envoy`: approved by a human; overrides the approval required by max-single-change-percent" in body
    assert "(safety-raise) `Deployment/payments/ledger/app`: safety raise (costs $6.20/month more)" in body
    assert "### Skipped" in body and "- `Deployment/payments/batch/app`: Deployment/payments/batch is not defined" in body
    assert "`git revert -m 1 <merge commit>`" in body and "close this pull request" in body


def test_no_secrets_in_body():
    body = render_body(realistic_change_set(), cluster="prod-eu", generated_at=GENERATED)
    assert "ghp_" not in body and "github_token" not in body.lower().replace(" ", "_")
    assert "s3cr3tpass" not in body
    assert "https://***@git.example.com/gitops.git" in body


def test_rendering_is_deterministic():
    first = render_body(realistic_change_set(), cluster="prod-eu", generated_at=GENERATED)
    second = render_body(realistic_change_set(), cluster="prod-eu", generated_at=GENERATED)
    assert first == second


def test_golden_sample_matches():
    body = render_body(realistic_change_set(), cluster="prod-eu", generated_at=GENERATED)
    if os.environ.get("FINOPS_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(body)
    golden = GOLDEN.read_text()
    # the golden file is itself a reviewed PR body: the essentials are in it
    assert golden.startswith("<!-- finops-operator:changeset=rightsize-payments fingerprint=")
    assert "| **Total** | **$105.48** | **$40.94** | **-$64.54** |" in golden
    assert "### How to revert" in golden
    assert body == golden, "PR body changed; review it and rerun with FINOPS_UPDATE_GOLDEN=1 to accept"


def test_dry_run_banner_and_title_and_commit_message():
    cs = realistic_change_set()
    assert "**Dry run.**" in render_body(cs, cluster="c", generated_at=GENERATED, dry_run=True)
    assert "**Dry run.**" not in render_body(cs, cluster="c", generated_at=GENERATED)
    # the skipped workload (batch) is not counted: the title says what the diff does
    assert render_title(cs) == "finops: Right-size CPU and memory of 2 workloads in payments (saves $64.54/month)"
    assert cs.title == "Right-size CPU and memory of 3 workloads in payments"     # the plan's own, untouched
    message = render_commit_message(cs)
    lines = message.splitlines()
    assert lines[0] == "finops: right-size CPU and memory of 2 workloads in payments"
    assert len(lines[0]) <= 72 and lines[1] == ""
    assert "- Deployment/payments/api/envoy: resources.requests.cpu 500m -> 100m" in lines
    assert "- Deployment/payments/batch/app: Deployment/payments/batch is not defined in the GitOps repository " \
           "(add the finops.dev/source annotation)" in lines
    assert lines[-2:] == ["Change-Set: rightsize-payments", f"Fingerprint: {changeset_fingerprint(cs)}"]


def test_infra_change_set_costs_and_raise_title():
    volumes = [volume_finding("vol-1", savings=8.0), volume_finding("vol-2", savings=12.5)]
    cs = ChangeSet("orphan-volumes", "Delete 2 orphan volumes", volumes,
                   {f.id: Decision(f.id, Verdict.ALLOW) for f in volumes})
    body = render_body(cs, cluster="prod-eu", generated_at=GENERATED)
    assert "| `volume/vol-1` | `delete` | `present` | `(deleted)` |" in body
    assert "| **Total** | **$20.50** | **$0.00** | **-$20.50** |" in body
    assert "- All changes allowed; no guardrail fired." in body
    node = node_group_finding(savings=140.16)
    assert cost_row(node) == (None, None, -140.16)
    raise_ = container_finding(memory=("256Mi", "512Mi"), savings=-4.5)
    cs = ChangeSet("rightsize-payments", "Right-size memory of 1 workload in payments", [raise_], {})
    assert render_title(cs).endswith("(adds $4.50/month for safety)")
    assert "Costs $4.50 more per month" in render_body(cs, cluster="c", generated_at=GENERATED)


def test_markdown_in_values_cannot_break_tables():
    finding = container_finding(workload="weird", evidence={"unit": "cores", "comment": "a | b\nc"})
    finding.title = "Pipe | in <title>"
    cs = ChangeSet("rightsize-payments", "t", [finding], {finding.id: Decision(finding.id, Verdict.ALLOW, [
        Reason("protected-labels", Verdict.ALLOW, "x")])})
    body = render_body(cs, cluster="c", generated_at=GENERATED)
    assert "<b>Deployment/payments/weird/app</b>: Pipe \\| in &lt;title&gt;</summary>" in body
    assert "Comment: a | b\nc" in body   # inside a list item, not a table


def test_huge_change_set_stays_under_github_limit():
    findings = [container_finding(f"ns{i % 3}", f"service-{i:04d}", "app", savings=1.0 + i / 100,
                                  cost_before=10.0, cost_after=5.0, evidence=cpu_evidence(0.2, 0.25, extra_list=list(range(40))))
                for i in range(150)]
    cs = ChangeSet("rightsize-big", "Right-size CPU of 150 workloads", findings,
                   {f.id: Decision(f.id, Verdict.ALLOW) for f in findings})
    body = render_body(cs, cluster="prod", generated_at=GENERATED)
    assert len(body) <= MAX_BODY_CHARS
    assert parse_marker(body)[0] == "rightsize-big"
    omitted = re.search(r"_Evidence for (\d+) more findings omitted", body)
    assert omitted and 0 < int(omitted.group(1)) < 150
    assert "| **Total** |" in body and "### How to revert" in body
    huge = [container_finding(f"namespace-{i}", f"a-very-long-workload-name-{i:05d}-" + "x" * 80, "app")
            for i in range(1500)]
    cs = ChangeSet("rightsize-huge", "t", huge, {f.id: Decision(f.id, Verdict.ALLOW) for f in huge})
    body = render_body(cs, cluster="prod", generated_at=GENERATED)
    assert len(body) <= MAX_BODY_CHARS
    assert re.search(r"_\d+ more change rows omitted", body)
    assert "### How to revert" in body


@pytest.mark.parametrize("confidence, risk, words", [(0.95, 0.05, ("(high)", "(low)")),
                                                     (0.65, 0.45, ("(medium)", "(medium)")),
                                                     (0.3, 0.9, ("(low)", "(high)"))])
def test_confidence_and_risk_words(confidence, risk, words):
    finding = container_finding(confidence=confidence, risk=risk)
    body = render_body(ChangeSet("x", "t", [finding], {}), cluster="c", generated_at=GENERATED)
    row = table(body, "Confidence and risk")[0]
    assert f"{confidence * 100:.0f}% {words[0]}" in row and f"{risk * 100:.0f}% {words[1]}" in row


def test_nested_evidence_becomes_sub_bullets_and_unknown_baselines_total_na():
    node = node_group_finding("general", savings=560.64)
    node.evidence = {
        "nodes_removed": [{"node": f"ip-10-0-0-{i}.ec2.internal", "monthly_price": 560.64,
                           "memory_requested": 15 * 2**30} for i in range(12)],
        "receivers_after": {"ip-10-0-1-1.ec2.internal": {"cpu_percent": 71.5, "memory_percent": 40.0}},
        "instance_types": ["m5.4xlarge"], "node_count_before": 24, "node_count_after": 23,
    }
    cs = ChangeSet("node-groups", "Consolidate 1 node group", [node], {node.id: Decision(node.id, Verdict.ALLOW)})
    body = render_body(cs, cluster="c", generated_at=GENERATED)
    assert "  - Nodes removed (12):\n    - Memory requested: 15Gi; Monthly price: $560.64; Node: ip-10-0-0-0.ec2.internal\n" in body
    assert "    - ... and 2 more\n" in body
    assert "  - Receivers after (1):\n    - ip-10-0-1-1.ec2.internal: Cpu percent: 71.5; Memory percent: 40\n" in body
    assert "  - Instance types: m5.4xlarge\n" in body
    assert "| **Total** | **n/a** | **n/a** | **-$560.64** |" in body
    assert "Before/after totals cover only" not in body


def test_no_stage_rewrites_the_title_and_the_prefix_appears_once():
    """Regression (issue 7, defect 16): commit subjects and PR titles read 'finops: finops: ...'."""
    cs = realistic_change_set()
    for _ in range(2):        # rendering twice must not compound
        title, message = render_title(cs), render_commit_message(cs)
    assert title.count("finops:") == 1 and message.splitlines()[0].count("finops:") == 1
    assert "finops:" not in render_body(cs, cluster="c", generated_at=GENERATED).splitlines()[1]


def test_edit_notes_are_listed_once_per_target():
    cs = realistic_change_set()
    api = next(f for f in cs.findings if str(f.target) == "Deployment/payments/api/app")
    envoy = next(f for f in cs.findings if str(f.target) == "Deployment/payments/api/envoy")
    cs.notes = {api.id: ["edited apps/payments/api.yaml"], envoy.id: ["edited apps/payments/api.yaml"]}
    twin = container_finding("payments", "api", "app", memory=("1Gi", "512Mi"))
    cs.findings.append(twin)
    cs.notes[twin.id] = ["edited apps/payments/api.yaml"]
    body = render_body(cs, cluster="c", generated_at=GENERATED)
    section = body.split("### Where the values live", 1)[1].split("###", 1)[0]
    assert section.count("edited apps/payments/api.yaml") == 2      # app and envoy, not app twice


def test_sizing_line_names_the_rule_that_decided():
    finding = container_finding("web", savings=40.0, evidence=cpu_evidence(0.2, 0.25, decided_by="trend-end"))
    cs = ChangeSet("cpu", "Right-size CPU", [finding], {finding.id: Decision(finding.id, Verdict.ALLOW)})
    body = render_body(cs, cluster="c", generated_at=GENERATED)
    assert "- Sizing: p95 x (1 + 15%) gives request 1 -> 250m; decided by the trend-end rule\n" in body
    assert "Decided by:" not in body        # shown in the sizing line, not again under details
