"""Ledger Opportunity <-> SavingsOpportunity object (pure mapping, no API calls).

Names are deterministic, ``<policy>-<finding id>``: the finding id is stable
across runs (detector + target), so a restarted operator finds the object it
wrote before instead of creating a second one.

What the CRD's strict status schema cannot hold exactly (it would be pruned)
travels in one annotation, ``finops.dev/ledger``, as JSON: the exact money and
score floats (status has cents and whole percents), the fingerprint and
savings a pull request carried (for the reopen rule) and archived cycles.
The transition history is trimmed to the CRD's ``maxItems`` (newest kept).

Labels: ``finops.dev/policy`` (list a policy's ledger with a selector),
``finops.dev/opportunity-id``, ``finops.dev/type``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..detectors import type_spec
from ..errors import FinOpsError
from ..guardrails.rules import approves
from ..ledger import Ledger, Opportunity, OpportunityState, Transition
from ..models import Finding
from ..money import decimal_string
from .conditions import timestamp
from .jsonread import JsonReader

GROUP, VERSION, PLURAL, KIND = "finops.dev", "v1alpha1", "savingsopportunities", "SavingsOpportunity"
API_VERSION = f"{GROUP}/{VERSION}"
POLICY_LABEL = "finops.dev/policy"
ID_LABEL = "finops.dev/opportunity-id"
TYPE_LABEL = "finops.dev/type"
LEDGER_ANNOTATION = "finops.dev/ledger"
MAX_HISTORY = 50
MAX_CHANGES = 32
MAX_EVIDENCE_KEYS = 64
def _target_kind(opp_type: str) -> str | None:
    """The CRD's spec.target.kind for an opportunity type, as its finding type declares it."""
    try:
        return type_spec(opp_type).target_kind.value
    except KeyError:
        return None


class MappingError(FinOpsError):
    """A SavingsOpportunity object that cannot be read back into the ledger."""


def object_name(policy: str, opportunity_id: str) -> str:
    """``<policy>-<id>``, kept within the 253 characters of a DNS subdomain."""
    prefix = policy[: 253 - len(opportunity_id) - 1]
    return f"{prefix}-{opportunity_id}"


def label_value(text: str) -> str:
    """A label value (<= 63 characters); long names get a hash suffix so they stay unique."""
    if len(text) <= 63:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[:54].rstrip('-._')}-{digest}"


def percent(value: float) -> int:
    return max(0, min(100, round(float(value) * 100)))


def parse_target(opp_type: str, target: str, namespace: str | None) -> dict[str, Any]:
    """The CRD's spec.target from the ledger's target string ('Deployment/ns/name/container', 'volume/vol-1')."""
    kind = _target_kind(opp_type)
    if kind is None:
        raise MappingError(f"unknown opportunity type {opp_type!r}", field="spec.type")
    if kind == "container":
        parts = target.split("/")
        if len(parts) != 4:
            raise MappingError(f"container target {target!r} is not Kind/namespace/workload/container",
                               field="spec.target")
        workload_kind, ns, workload, container = parts
        return {"kind": kind, "name": container, "namespace": ns, "workload": {"kind": workload_kind, "name": workload}}
    prefix, _, name = target.partition("/")
    if prefix != kind or not name:
        raise MappingError(f"target {target!r} should read {kind}/<name>", field="spec.target")
    out: dict[str, Any] = {"kind": kind, "name": name}
    if namespace:
        out["namespace"] = namespace
    return out


def format_target(target: dict[str, Any]) -> str:
    """The inverse of :func:`parse_target`."""
    if target.get("kind") == "container":
        workload = target.get("workload") or {}
        return f"{workload.get('kind')}/{target.get('namespace')}/{workload.get('name')}/{target.get('name')}"
    return f"{target.get('kind')}/{target.get('name')}"


def _evidence(finding: Finding | None) -> dict[str, Any] | None:
    """JSON-safe evidence, at most the CRD's 64 keys (first ones kept)."""
    if finding is None:
        return None
    safe = json.loads(json.dumps(finding.evidence, default=str))
    return dict(list(safe.items())[:MAX_EVIDENCE_KEYS])


def _time(value: datetime | None) -> str | None:
    return timestamp(value) if value is not None else None


def _history(opp: Opportunity) -> list[dict[str, Any]]:
    out = []
    for t in opp.history[-MAX_HISTORY:]:
        item = {"at": timestamp(t.at), "to": t.to_state, "reason": t.reason[:1024]}
        if t.from_state:
            item["from"] = t.from_state
        out.append(item)
    return out


def _changes(opp: Opportunity) -> list[dict[str, Any]]:
    out = []
    for change in opp.changes[:MAX_CHANGES]:
        item = {"field": str(change.get("field"))}
        for key in ("before", "after"):
            if change.get(key) is not None:
                item[key] = str(change[key])[:256]
        out.append(item)
    return out


def ledger_annotation(opp: Opportunity) -> str:
    """The exact values the status cannot hold (see the module docstring)."""
    return json.dumps({
        "estimated": opp.estimated_monthly_savings, "realized": opp.realized_monthly_savings,
        "baseline": opp.baseline_monthly_cost, "confidence": opp.confidence, "risk": opp.risk,
        "proposedFingerprint": opp.proposed_fingerprint, "proposedSavings": opp.proposed_savings,
        "pastCycles": opp.past_cycles,
    }, sort_keys=True, separators=(",", ":"), default=str)


def to_metadata(opp: Opportunity, *, policy: str, namespace: str, policy_uid: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": object_name(policy, opp.id), "namespace": namespace,
        "labels": {POLICY_LABEL: label_value(policy), ID_LABEL: opp.id, TYPE_LABEL: opp.type,
                   "app.kubernetes.io/managed-by": "finops-operator"},
        "annotations": {LEDGER_ANNOTATION: ledger_annotation(opp)},
    }
    if policy_uid:
        meta["ownerReferences"] = [{"apiVersion": API_VERSION, "kind": "FinOpsPolicy", "name": policy,
                                    "uid": policy_uid, "controller": True}]
    return meta


def to_spec(opp: Opportunity, *, policy: str, finding: Finding | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"detector": opp.detector, "type": opp.type,
                            "target": parse_target(opp.type, opp.target, opp.namespace), "policyRef": {"name": policy}}
    if finding is not None:
        spec["title"] = finding.title[:256]
    if opp.team:
        spec["team"] = opp.team[:63]
    if opp.cluster:
        spec["cluster"] = opp.cluster[:63]
    return spec


def to_status(opp: Opportunity, *, finding: Finding | None = None) -> dict[str, Any]:
    """The status to merge-patch; optional fields that are unset are ``None`` so a patch clears them."""
    pull = None
    if opp.pr_url or opp.branch:
        pull = {"url": opp.pr_url, "number": opp.pr_number, "branch": opp.branch, "changeSet": opp.change_set}
    status: dict[str, Any] = {
        "state": opp.state.value, "fingerprint": opp.fingerprint, "changes": _changes(opp),
        "estimatedMonthlySavings": decimal_string(opp.estimated_monthly_savings),
        "realizedMonthlySavings": decimal_string(opp.realized_monthly_savings),
        "baselineMonthlyCost": decimal_string(opp.baseline_monthly_cost),
        "confidencePercent": percent(opp.confidence), "riskPercent": percent(opp.risk),
        "decision": _decision(opp.decision), "pullRequest": pull,
        "firstSeen": _time(opp.first_seen), "lastSeen": _time(opp.last_seen),
        "mergedAt": _time(opp.merged_at), "verifiedAt": _time(opp.verified_at), "history": _history(opp),
    }
    evidence = _evidence(finding)
    if evidence is not None:
        status["evidence"] = evidence
    return status


def _decision(decision: dict[str, Any]) -> dict[str, Any]:
    reasons = [{"rule": str(r.get("rule"))[:63], "verdict": r.get("verdict"), "message": str(r.get("message"))[:1024]}
               for r in (decision.get("reasons") or [])[:32]]
    return {"verdict": decision.get("verdict") or "allow", "reasons": reasons}


def to_object(opp: Opportunity, *, policy: str, namespace: str, policy_uid: str | None = None,
              finding: Finding | None = None) -> dict[str, Any]:
    """The whole object (metadata, spec, status) for one ledger entry."""
    return {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": to_metadata(opp, policy=policy, namespace=namespace, policy_uid=policy_uid),
            "spec": to_spec(opp, policy=policy, finding=finding),
            "status": to_status(opp, finding=finding)}


# --------------------------------------------------------------------------- reading back
#
# Reading is total: every value of an object a namespace editor can write (spec,
# status, the ledger annotation) is checked for its type and range here, and any
# problem is a MappingError naming the object and the field, never another
# exception. A bad value in the ledger annotation (a cache of exact numbers) is
# not fatal: the status value is used, the problem is reported as a warning, and
# the next save rewrites the annotation.


def opportunity_id(obj: dict[str, Any]) -> str | None:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    value = labels.get(ID_LABEL) if isinstance(labels, dict) else None
    return value if isinstance(value, str) and value else None


def is_approved(obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return approves(meta.get("annotations") if isinstance(meta, dict) else None)


@dataclass
class LedgerRead:
    """The ledger rebuilt from a policy's objects, and what could not be read (reported, not fatal)."""

    ledger: Ledger
    unreadable: dict[str, MappingError] = field(default_factory=dict)   # object name -> why it was skipped
    warnings: list[MappingError] = field(default_factory=list)           # read, with an ignored field


def read_ledger(objects: list[Any]) -> LedgerRead:
    """Every readable opportunity; an unreadable object is skipped and named, never fatal."""
    opportunities: list[Opportunity] = []
    unreadable: dict[str, MappingError] = {}
    warnings: list[MappingError] = []
    for index, obj in enumerate(objects):
        try:
            opp = from_object(obj, warnings=warnings)
        except MappingError as exc:
            unreadable[_name_of(obj) or f"items[{index}]"] = exc
            continue
        if opp is not None:
            opportunities.append(opp)
    return LedgerRead(Ledger(opportunities), unreadable, warnings)


def _name_of(obj: Any) -> str | None:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return str(name) if name else None


def from_object(obj: Any, *, warnings: list[MappingError] | None = None) -> Opportunity | None:
    """The ledger entry an object holds; None when it has no status yet (created, status not written).

    Raises only :class:`MappingError` (naming the object and field); problems in the
    ledger annotation are appended to ``warnings`` and the status values used instead.
    """
    if not isinstance(obj, dict):
        raise MappingError(f"expected an object, got {type(obj).__name__}", source=KIND)
    meta = JsonReader(f"{KIND} {_name_of(obj) or '(unnamed)'}", MappingError).obj(obj.get("metadata"), "metadata")
    read = JsonReader(f"{KIND} {meta.get('namespace')}/{meta.get('name')}", MappingError)
    try:
        return _read(obj, meta, read, warnings if warnings is not None else [])
    except MappingError:
        raise
    except Exception as exc:  # a check this module forgot: still a typed error, never a crash
        raise MappingError(f"unreadable ({type(exc).__name__}: {exc})", source=read.source) from None


def _read(obj: dict[str, Any], meta: dict[str, Any], read: JsonReader, warnings: list[MappingError]
          ) -> Opportunity | None:
    spec, status = read.obj(obj.get("spec"), "spec"), read.obj(obj.get("status"), "status")
    opp_id = opportunity_id(obj)
    if not opp_id:
        raise read.fail(f"missing label {ID_LABEL}", "metadata.labels")
    if not status.get("state"):
        return None
    state = _state(status.get("state"), read)
    extras = _extras(meta, read, warnings)
    opp_type = read.text(spec.get("type"), "spec.type") or ""
    target_spec = read.obj(spec.get("target"), "spec.target")
    read.obj(target_spec.get("workload"), "spec.target.workload")
    target = format_target(target_spec)
    namespace = read.text(target_spec.get("namespace"), "spec.target.namespace")
    try:
        parse_target(opp_type, target, namespace)        # what is read must be writable again
    except MappingError as exc:
        raise exc.located(source=read.source) from None
    first_seen = read.time(status.get("firstSeen"), "status.firstSeen")
    last_seen = read.time(status.get("lastSeen"), "status.lastSeen")
    if first_seen is None or last_seen is None:
        raise read.fail("firstSeen and lastSeen are required once a state is set", "status.firstSeen")
    pull = read.obj(status.get("pullRequest"), "status.pullRequest")
    return Opportunity(
        id=opp_id, detector=read.text(spec.get("detector"), "spec.detector") or "", type=opp_type,
        target=target, namespace=namespace, team=read.text(spec.get("team"), "spec.team"),
        cluster=read.text(spec.get("cluster"), "spec.cluster"), state=state,
        estimated_monthly_savings=_exact(extras, "estimated", status, "estimatedMonthlySavings", read) or 0.0,
        confidence=_exact(extras, "confidence", status, "confidencePercent", read, percent=True) or 0.0,
        risk=_exact(extras, "risk", status, "riskPercent", read, percent=True) or 0.0,
        fingerprint=read.text(status.get("fingerprint"), "status.fingerprint") or "",
        first_seen=first_seen, last_seen=last_seen,
        realized_monthly_savings=_exact(extras, "realized", status, "realizedMonthlySavings", read),
        baseline_monthly_cost=_exact(extras, "baseline", status, "baselineMonthlyCost", read),
        changes=_read_changes(status.get("changes"), read), decision=_read_decision(status.get("decision"), read),
        pr_url=read.text(pull.get("url"), "status.pullRequest.url"),
        pr_number=read.integer(pull.get("number"), "status.pullRequest.number"),
        branch=read.text(pull.get("branch"), "status.pullRequest.branch"),
        change_set=read.text(pull.get("changeSet"), "status.pullRequest.changeSet"),
        proposed_fingerprint=extras.get("proposedFingerprint"), proposed_savings=extras.get("proposedSavings"),
        merged_at=read.time(status.get("mergedAt"), "status.mergedAt"),
        verified_at=read.time(status.get("verifiedAt"), "status.verifiedAt"),
        history=_read_history(status.get("history"), read), past_cycles=extras.get("pastCycles") or [])


def _state(value: Any, read: JsonReader) -> OpportunityState:
    try:
        return OpportunityState(value)
    except (ValueError, TypeError):
        raise read.fail(f"unknown state {value!r:.64}; one of {[s.value for s in OpportunityState]}",
                        "status.state") from None


def _read_changes(value: Any, read: JsonReader) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(read.items(value, "status.changes")):
        where = f"status.changes[{i}]"
        item = read.obj(item, where)
        out.append({"field": read.text(item.get("field"), f"{where}.field") or "",
                    "before": read.text(item.get("before"), f"{where}.before"),
                    "after": read.text(item.get("after"), f"{where}.after")})
    return out


def _read_decision(value: Any, read: JsonReader) -> dict[str, Any]:
    decision = read.obj(value, "status.decision")
    reasons = []
    for i, item in enumerate(read.items(decision.get("reasons"), "status.decision.reasons")):
        where = f"status.decision.reasons[{i}]"
        item = read.obj(item, where)
        reasons.append({key: read.text(item.get(key), f"{where}.{key}") or "" for key in ("rule", "verdict", "message")})
    return {"verdict": read.text(decision.get("verdict"), "status.decision.verdict") or "allow", "reasons": reasons}


def _read_history(value: Any, read: JsonReader) -> list[Transition]:
    out = []
    for i, item in enumerate(read.items(value, "status.history")):
        where = f"status.history[{i}]"
        item = read.obj(item, where)
        at, to = read.time(item.get("at"), f"{where}.at"), read.text(item.get("to"), f"{where}.to")
        if at is None or not to:
            raise read.fail("a transition needs 'at' and 'to'", where)
        out.append(Transition(at, read.text(item.get("from"), f"{where}.from"), to,
                              read.text(item.get("reason"), f"{where}.reason") or ""))
    return out


# --------------------------------------------------------------------------- the ledger annotation

_ANNOTATION_FIELD = f"metadata.annotations[{LEDGER_ANNOTATION}]"
_IGNORED = "ignored (the status value is used; the next save rewrites the annotation)"
_CYCLE_NUMBERS = ("estimated_monthly_savings", "realized_monthly_savings", "baseline_monthly_cost")
_CYCLE_TEXTS = ("fingerprint", "state", "pr_url", "merged_at", "verified_at")


def _extras(meta: dict[str, Any], read: JsonReader, warnings: list[MappingError]) -> dict[str, Any]:
    """The annotation's values that are well-formed; each bad one is a warning and is left out."""
    annotations = meta.get("annotations")
    raw = annotations.get(LEDGER_ANNOTATION) if isinstance(annotations, dict) else None
    if not raw:
        return {}
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        warnings.append(read.fail(f"not a JSON object; {_IGNORED}", _ANNOTATION_FIELD))
        return {}
    out: dict[str, Any] = {}
    for key in ("estimated", "realized", "baseline", "confidence", "risk", "proposedSavings"):
        _keep(out, key, data.get(key), read.number, warnings)
    _keep(out, "proposedFingerprint", data.get("proposedFingerprint"), read.text, warnings)
    _keep(out, "pastCycles", data.get("pastCycles"), lambda v, w: _cycles(v, read, w), warnings)
    return out


def _keep(out: dict[str, Any], key: str, value: Any, reader: Any, warnings: list[MappingError]) -> None:
    try:
        out[key] = reader(value, f"{_ANNOTATION_FIELD}.{key}")
    except MappingError as exc:
        warnings.append(MappingError(f"{exc.message}; {_IGNORED}", source=exc.source, field=exc.field))


def _cycles(value: Any, read: JsonReader, where: str) -> list[dict[str, Any]]:
    """Archived cycles, with the keys they have (each checked for its type; unknown keys dropped)."""
    readers = {**{k: read.number for k in _CYCLE_NUMBERS}, **{k: read.text for k in _CYCLE_TEXTS},
               "pr_number": read.integer}
    out = []
    for i, item in enumerate(read.items(value, where)):
        item = read.obj(item, f"{where}[{i}]")
        out.append({k: readers[k](v, f"{where}[{i}].{k}") for k, v in item.items() if k in readers})
    return out


def _exact(extras: dict[str, Any], key: str, status: dict[str, Any], status_key: str, read: JsonReader, *,
           percent: bool = False) -> float | None:
    """The exact annotation value when present, else the status value (cents, whole percent)."""
    if extras.get(key) is not None:
        return extras[key]
    if percent:
        value = read.integer(status.get(status_key), f"status.{status_key}")
        return None if value is None else min(100, max(0, value)) / 100
    return read.number(status.get(status_key), f"status.{status_key}")
