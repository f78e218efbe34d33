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
from datetime import datetime
from typing import Any

from ..errors import FinOpsError
from ..ledger import Opportunity, OpportunityState, Transition
from ..models import Finding
from ..money import decimal_string
from .conditions import timestamp

GROUP, VERSION, PLURAL, KIND = "finops.dev", "v1alpha1", "savingsopportunities", "SavingsOpportunity"
API_VERSION = f"{GROUP}/{VERSION}"
POLICY_LABEL = "finops.dev/policy"
ID_LABEL = "finops.dev/opportunity-id"
TYPE_LABEL = "finops.dev/type"
LEDGER_ANNOTATION = "finops.dev/ledger"
APPROVED_ANNOTATION = "finops.dev/approved"
MAX_HISTORY = 50
MAX_CHANGES = 32
MAX_EVIDENCE_KEYS = 64
_KIND_BY_TYPE = {"rightsize-cpu": "container", "rightsize-memory": "container", "idle-node": "node-group",
                 "orphan-volume": "volume"}


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
    kind = _KIND_BY_TYPE.get(opp_type)
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


def _parse_time(value: Any, where: str, source: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise MappingError(f"{value!r} is not an RFC 3339 time", source=source, field=where) from None


def _float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _extras(meta: dict[str, Any], source: str) -> dict[str, Any]:
    raw = (meta.get("annotations") or {}).get(LEDGER_ANNOTATION)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise MappingError("not JSON; delete the annotation to rebuild it from status", source=source,
                           field=f"metadata.annotations[{LEDGER_ANNOTATION}]") from None
    return data if isinstance(data, dict) else {}


def opportunity_id(obj: dict[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    return (meta.get("labels") or {}).get(ID_LABEL)


def is_approved(obj: dict[str, Any]) -> bool:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(APPROVED_ANNOTATION, "")
    return str(value).strip().lower() == "true"


def from_object(obj: dict[str, Any]) -> Opportunity | None:
    """The ledger entry an object holds; None when it has no status yet (created, status not written)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    source = f"SavingsOpportunity {meta.get('namespace')}/{meta.get('name')}"
    opp_id = opportunity_id(obj)
    if not opp_id:
        raise MappingError(f"missing label {ID_LABEL}", source=source, field="metadata.labels")
    if not status.get("state"):
        return None
    try:
        state = OpportunityState(status["state"])
    except ValueError:
        raise MappingError(f"unknown state {status['state']!r}", source=source, field="status.state") from None
    extras = _extras(meta, source)
    target = spec.get("target") or {}
    first_seen = _parse_time(status.get("firstSeen"), "status.firstSeen", source)
    last_seen = _parse_time(status.get("lastSeen"), "status.lastSeen", source)
    if first_seen is None or last_seen is None:
        raise MappingError("firstSeen and lastSeen are required once a state is set", source=source,
                           field="status.firstSeen")
    pull = status.get("pullRequest") or {}
    history = [Transition(_parse_time(h.get("at"), f"status.history[{i}].at", source), h.get("from"), h["to"],
                          h.get("reason") or "")
               for i, h in enumerate(status.get("history") or [])]
    decision = status.get("decision") or {"verdict": "allow", "reasons": []}
    return Opportunity(
        id=opp_id, detector=spec.get("detector") or "", type=spec.get("type") or "", target=format_target(target),
        namespace=target.get("namespace"), team=spec.get("team"), cluster=spec.get("cluster"), state=state,
        estimated_monthly_savings=_pick(extras, "estimated", status.get("estimatedMonthlySavings"), 0.0),
        confidence=_pick(extras, "confidence", _pct(status.get("confidencePercent")), 0.0),
        risk=_pick(extras, "risk", _pct(status.get("riskPercent")), 0.0),
        fingerprint=status.get("fingerprint") or "", first_seen=first_seen, last_seen=last_seen,
        realized_monthly_savings=_pick(extras, "realized", status.get("realizedMonthlySavings"), None),
        baseline_monthly_cost=_pick(extras, "baseline", status.get("baselineMonthlyCost"), None),
        changes=[{"field": c.get("field"), "before": c.get("before"), "after": c.get("after")}
                 for c in status.get("changes") or []],
        decision={"verdict": decision.get("verdict"), "reasons": list(decision.get("reasons") or [])},
        pr_url=pull.get("url"), pr_number=pull.get("number"), branch=pull.get("branch"),
        change_set=pull.get("changeSet"), proposed_fingerprint=extras.get("proposedFingerprint"),
        proposed_savings=extras.get("proposedSavings"),
        merged_at=_parse_time(status.get("mergedAt"), "status.mergedAt", source),
        verified_at=_parse_time(status.get("verifiedAt"), "status.verifiedAt", source),
        history=history, past_cycles=list(extras.get("pastCycles") or []))


def _pct(value: Any) -> float | None:
    return None if value is None else int(value) / 100


def _pick(extras: dict[str, Any], key: str, fallback: Any, default: Any) -> Any:
    """The exact annotation value when present, else the status value (cents, percent), else ``default``."""
    if extras.get(key) is not None:
        return float(extras[key])
    value = _float(fallback)
    return default if value is None else value
