"""Opportunity <-> SavingsOpportunity object: deterministic names, CRD-shaped status, exact round trip."""
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from finops_operator.api import opportunities as m
from finops_operator.guardrails import APPROVAL_ANNOTATION
from finops_operator.ledger import Ledger, OpportunityState
from finops_operator.money import decimal_string
from finops_operator.models import (
    Change,
    EditKind,
    EditTarget,
    Decision,
    Finding,
    FindingType,
    Reason,
    Target,
    TargetKind,
    Verdict,
    WorkloadRef,
)

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
CRD = Path(__file__).resolve().parents[2] / "crds" / "savingsopportunities.yaml"


def cpu_finding(after: str = "250m", savings: float = 41.337) -> Finding:
    ref = WorkloadRef("Deployment", "shop", "web")
    return Finding("cpu-rightsizing", FindingType.RIGHTSIZE_CPU,
                   Target(TargetKind.CONTAINER, "app", "shop", ref), "Right-size shop/web/app CPU",
                   [Change("resources.requests.cpu", "1", after), Change("resources.limits.cpu", "2", None)],
                   savings, 0.8734, 0.2151, EditTarget(EditKind.CONTAINER_RESOURCES), evidence={"p95": 0.12, "window": {"days": 14}, "when": T0},
                   team="shop", cluster="prod")


def volume_finding() -> Finding:
    return Finding("orphan-volumes", FindingType.ORPHAN_VOLUME, Target(TargetKind.VOLUME, "vol-0abc"),
                   "Delete vol-0abc", [Change("delete", "present", None)], 8.0, 0.9, 0.1,
                   EditTarget(EditKind.EBS_VOLUME))


def lifecycle() -> tuple[Ledger, Finding]:
    """A ledger entry that went Detected -> Proposed -> Merged, with a PR, through the real Ledger."""
    finding = cpu_finding()
    ledger = Ledger()
    decision = Decision.from_reasons(finding.id, [Reason("max-single-change", Verdict.ALLOW, "within $500")])
    ledger.observe([finding, volume_finding()], {finding.id: decision}, T0)
    ledger.proposed(finding.id, "https://github.com/acme/gitops/pull/7", 7, "finops/rightsize-shop",
                    "rightsize-shop", T0 + timedelta(minutes=1))
    ledger.merged(finding.id, T0 + timedelta(days=1))
    return ledger, finding


def test_names_are_deterministic_and_valid():
    finding = cpu_finding()
    assert m.object_name("platform", finding.id) == f"platform-{finding.id}"
    assert m.object_name("platform", finding.id) == m.object_name("platform", cpu_finding("300m", 9.0).id)
    long = m.object_name("p" * 300, finding.id)
    assert len(long) <= 253 and long.endswith(finding.id)
    assert len(m.label_value("x" * 100)) <= 63 and m.label_value("x" * 100) != m.label_value("x" * 99 + "y")


def test_object_matches_the_crd_shape():
    ledger, finding = lifecycle()
    opp = ledger.get(finding.id)
    obj = m.to_object(opp, policy="platform", namespace="finops-system", policy_uid="uid-1", finding=finding)
    assert obj["metadata"]["name"] == f"platform-{finding.id}"
    assert obj["metadata"]["labels"][m.POLICY_LABEL] == "platform"
    assert obj["metadata"]["labels"][m.ID_LABEL] == finding.id
    assert obj["metadata"]["ownerReferences"][0] == {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
                                                     "name": "platform", "uid": "uid-1", "controller": True}
    assert obj["spec"] == {"detector": "cpu-rightsizing", "type": "rightsize-cpu", "title": finding.title,
                           "target": {"kind": "container", "name": "app", "namespace": "shop",
                                      "workload": {"kind": "Deployment", "name": "web"}},
                           "policyRef": {"name": "platform"}, "team": "shop", "cluster": "prod"}
    status = obj["status"]
    assert status["state"] == "Merged"
    assert status["estimatedMonthlySavings"] == "41.34" and status["realizedMonthlySavings"] is None
    assert status["confidencePercent"] == 87 and status["riskPercent"] == 22
    assert status["changes"] == [{"field": "resources.requests.cpu", "before": "1", "after": "250m"},
                                 {"field": "resources.limits.cpu", "before": "2"}]
    assert status["pullRequest"] == {"url": "https://github.com/acme/gitops/pull/7", "number": 7,
                                     "branch": "finops/rightsize-shop", "changeSet": "rightsize-shop"}
    assert [h["to"] for h in status["history"]] == ["Detected", "Proposed", "Merged"]
    assert "from" not in status["history"][0] and status["history"][1]["from"] == "Detected"
    assert status["evidence"]["when"] == str(T0)         # non-JSON values become strings
    assert status["decision"]["reasons"][0]["rule"] == "max-single-change"
    json.dumps(obj)


def test_status_uses_only_fields_the_crd_declares():
    """The strict schema would prune anything else: every key we write must be declared."""
    crd = yaml.safe_load(CRD.read_text())
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    ledger, finding = lifecycle()
    obj = m.to_object(ledger.get(finding.id), policy="p", namespace="n", finding=finding)
    assert set(obj["status"]) <= set(props["status"]["properties"])
    assert set(obj["spec"]) <= set(props["spec"]["properties"])
    money = re.compile(props["status"]["properties"]["estimatedMonthlySavings"]["pattern"])
    for value in (0.0, -0.001, -12.5, 1234567.891, 41.337):
        assert money.match(decimal_string(value)), decimal_string(value)
    assert decimal_string(-0.001) == "0.00"


@pytest.mark.parametrize("which", ["container", "volume"])
def test_round_trip_is_exact(which):
    ledger, finding = lifecycle()
    opp = ledger.get(finding.id) if which == "container" else ledger.get(volume_finding().id)
    obj = json.loads(json.dumps(m.to_object(opp, policy="platform", namespace="ns", finding=finding)))
    back = m.from_object(obj)
    assert back == opp


def test_round_trip_keeps_what_status_cannot_hold():
    ledger, finding = lifecycle()
    opp = ledger.get(finding.id)
    opp.past_cycles.append({"fingerprint": "abc", "state": "Verified", "realized_monthly_savings": 12.345})
    opp.realized_monthly_savings = 33.3333
    back = m.from_object(json.loads(json.dumps(m.to_object(opp, policy="p", namespace="n"))))
    assert back.proposed_fingerprint == opp.proposed_fingerprint and back.proposed_savings == 41.337
    assert back.past_cycles == opp.past_cycles and back.realized_monthly_savings == 33.3333
    assert back.confidence == 0.8734


def test_without_the_annotation_status_values_are_used():
    ledger, finding = lifecycle()
    obj = m.to_object(ledger.get(finding.id), policy="p", namespace="n")
    del obj["metadata"]["annotations"][m.LEDGER_ANNOTATION]
    back = m.from_object(obj)
    assert back.estimated_monthly_savings == 41.34 and back.confidence == 0.87 and back.risk == 0.22


def test_history_is_trimmed_to_the_crd_limit():
    finding = cpu_finding()
    ledger = Ledger()
    for i in range(60):
        verdict = Verdict.DENY if i % 2 else Verdict.ALLOW
        ledger.observe([finding], {finding.id: Decision(finding.id, verdict, [Reason("r", verdict, "m")])},
                       T0 + timedelta(hours=i))
    opp = ledger.get(finding.id)
    assert len(opp.history) == 60
    status = m.to_status(opp)
    assert len(status["history"]) == 50
    assert status["history"][-1]["at"] == m.timestamp(opp.history[-1].at)


def test_object_without_status_is_not_in_the_ledger_yet():
    ledger, finding = lifecycle()
    obj = m.to_object(ledger.get(finding.id), policy="p", namespace="n")
    obj.pop("status")
    assert m.from_object(obj) is None


def test_unreadable_objects_name_the_field():
    ledger, finding = lifecycle()
    obj = m.to_object(ledger.get(finding.id), policy="p", namespace="n")
    obj["status"]["state"] = "Exploded"
    with pytest.raises(m.MappingError, match="status.state"):
        m.from_object(obj)
    obj = m.to_object(ledger.get(finding.id), policy="p", namespace="n")
    obj["status"]["history"][0]["at"] = 12
    with pytest.raises(m.MappingError, match=r"status.history\[0\].at"):
        m.from_object(obj)
    with pytest.raises(m.MappingError, match="Kind/namespace/workload/container"):
        m.parse_target("rightsize-cpu", "volume/x", None)


def test_approval_annotation():
    ledger, finding = lifecycle()
    obj = m.to_object(ledger.get(finding.id), policy="p", namespace="n")
    assert not m.is_approved(obj)
    obj["metadata"]["annotations"][APPROVAL_ANNOTATION] = "True "
    assert m.is_approved(obj) and m.opportunity_id(obj) == finding.id
    assert ledger.get(finding.id).state == OpportunityState.MERGED


@pytest.mark.parametrize(("annotation", "field"), [
    ('{"estimated":"lots"}', "estimated"),                 # the ledger-poisoning defect (issue 7, #4)
    ('{"confidence":1e999}', "confidence"),
    ('{"pastCycles":[{"realized_monthly_savings":"x"}]}', "pastCycles[0].realized_monthly_savings"),
    ('{"proposedFingerprint":7}', "proposedFingerprint"),
    ("{not json", ""), ("[1,2]", ""), ("[" * 100000, ""),
])
def test_a_bad_ledger_annotation_is_a_warning_and_the_status_values_are_used(annotation, field):
    ledger, finding = lifecycle()
    good = ledger.get(finding.id)
    obj = m.to_object(good, policy="p", namespace="n")
    obj["metadata"]["annotations"][m.LEDGER_ANNOTATION] = annotation
    warnings: list[m.MappingError] = []
    back = m.from_object(obj, warnings=warnings)
    assert back is not None and back.state == good.state
    assert back.estimated_monthly_savings == pytest.approx(good.estimated_monthly_savings, abs=0.005)
    assert len(warnings) == 1 and f"finops.dev/ledger]{'.' if field else ''}{field}" in str(warnings[0])
    assert "n/n-" in str(warnings[0]) or "SavingsOpportunity n/" in str(warnings[0])


def test_read_ledger_skips_and_names_an_unreadable_object_and_keeps_the_others():
    ledger, finding = lifecycle()
    good = m.to_object(ledger.get(finding.id), policy="p", namespace="n")
    bad = json.loads(json.dumps(good))
    bad["metadata"]["name"], bad["metadata"]["labels"][m.ID_LABEL] = "p-broken", "broken"
    bad["status"]["pullRequest"]["number"] = "seven"
    read = m.read_ledger([bad, good, "not an object"])
    assert [o.id for o in read.ledger.opportunities] == [finding.id]
    assert set(read.unreadable) == {"p-broken", "items[2]"}
    assert "status.pullRequest.number" in str(read.unreadable["p-broken"])


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=12)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_reading_any_object_returns_an_opportunity_or_a_mapping_error(data):
    """Total parsing: replace any one value of a real object (spec, status, annotation) with any JSON."""
    ledger, finding = lifecycle()
    obj = json.loads(json.dumps(m.to_object(ledger.get(finding.id), policy="p", namespace="n")))
    extras = json.loads(obj["metadata"]["annotations"][m.LEDGER_ANNOTATION])
    paths = list(_paths(obj)) + [("annotation", k) for k in extras]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(_json)
    if path[0] == "annotation":
        extras[path[1]] = value
        obj["metadata"]["annotations"][m.LEDGER_ANNOTATION] = json.dumps(extras)
    else:
        _set(obj, path, value)
    try:
        back = m.from_object(obj, warnings=[])
    except m.MappingError as exc:
        assert exc.source and exc.source.startswith("SavingsOpportunity")
        return
    if back is not None:                                 # what was read can be written and read again
        again = m.from_object(json.loads(json.dumps(m.to_object(back, policy="p", namespace="n"))))
        assert again is not None and again.state == back.state
        back.totals = Ledger([back]).totals(by="team")


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def _set(node, path, value):
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
