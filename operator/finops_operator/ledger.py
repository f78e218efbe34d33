"""The savings ledger: every opportunity's lifecycle, estimated vs realized savings, and its audit trail.

Pure state machine over plain data (no clock, no I/O); the operator keeps it in
SavingsOpportunity objects (``api/opportunities.py`` maps both ways).

    (new) -> Detected | Blocked | NeedsApproval          observe(): by the guardrail verdict
    Detected <-> Blocked <-> NeedsApproval               observe(): the verdict changed
    Detected -> Proposed                                 proposed(): PR opened (Proposed -> Proposed: PR updated)
    Proposed -> Merged -> Verified                       merged(); verify() only after merged_at + settle
    Proposed -> Rejected                                 closed(): a human closed the PR
    Rejected -> Proposed                                 proposed() again, when should_reopen() said so
                                                         (the guardrails deny it until then)
    any open state -> Superseded                         observe(): the finding disappeared
    Proposed -> Superseded                               withdrawn(): the operator closed its own PR (a
                                                         FreezeGrowth released: its reason no longer holds)
    Superseded -> Detected | Blocked | NeedsApproval     observe(): it came back
    Merged | Verified -> Detected | ...                  observe(): a NEW recommendation for the same target
                                                         (e.g. a raise after OOM kills); the finished cycle
                                                         is archived in ``past_cycles``, its realized
                                                         savings still count in totals()

Every transition appends a Transition with a reason. A changed fingerprint on a
Proposed or Rejected opportunity is recorded as a same-state transition.
Illegal transitions raise :class:`LedgerError`; repeating the call that led to
the current state (merged() on a Merged one, closed() on a Rejected one) is a
no-op, because the control loop polls PR state every run.

The reopen rule (one rule, :func:`should_reopen`, used by the guardrails and
by both providers; the PR body quotes :data:`REOPEN_PROMISE`): a change a human
rejected (PR closed, branch deleted) is proposed again only when the
recommendation changed materially: its fingerprint differs from the one that
was proposed AND the estimated savings moved more than 20% (relative to the
proposed savings) or changed direction (a cut became a raise or back).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from enum import Enum
from typing import Any, Callable

from .errors import FinOpsError
from .models import Decision, Finding, Verdict
from .money import usd

MATERIAL_CHANGE = 0.20
REOPEN_PROMISE = (f"The operator will not propose it again unless the recommendation changes materially "
                  f"(different values and an estimated saving that moves by more than {MATERIAL_CHANGE:.0%} "
                  f"or changes direction).")


class LedgerError(FinOpsError):
    """An impossible lifecycle step."""


class OpportunityState(str, Enum):
    DETECTED = "Detected"
    BLOCKED = "Blocked"
    NEEDS_APPROVAL = "NeedsApproval"
    PROPOSED = "Proposed"
    MERGED = "Merged"
    VERIFIED = "Verified"
    REJECTED = "Rejected"
    SUPERSEDED = "Superseded"


S = OpportunityState
_GONE_WHILE_OPEN = "no longer detected while its pull request is open"
PRE_PR = frozenset({S.DETECTED, S.BLOCKED, S.NEEDS_APPROVAL})
DONE = frozenset({S.MERGED, S.VERIFIED})
OPEN = PRE_PR | {S.PROPOSED}                     # found, not merged yet (reports, health, insights)
_BY_VERDICT = {Verdict.ALLOW: S.DETECTED, Verdict.DENY: S.BLOCKED, Verdict.REQUIRE_APPROVAL: S.NEEDS_APPROVAL}


@dataclass
class Transition:
    at: datetime
    from_state: str | None
    to_state: str
    reason: str


@dataclass
class Opportunity:
    id: str
    detector: str
    type: str
    target: str
    namespace: str | None
    team: str | None
    cluster: str | None
    state: OpportunityState
    estimated_monthly_savings: float
    confidence: float
    risk: float
    fingerprint: str
    first_seen: datetime
    last_seen: datetime
    realized_monthly_savings: float | None = None
    baseline_monthly_cost: float | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] = field(default_factory=dict)
    pr_url: str | None = None
    pr_number: int | None = None
    branch: str | None = None
    change_set: str | None = None
    proposed_fingerprint: str | None = None      # what the PR carried (for should_reopen)
    proposed_savings: float | None = None
    merged_at: datetime | None = None
    verified_at: datetime | None = None
    history: list[Transition] = field(default_factory=list)
    past_cycles: list[dict[str, Any]] = field(default_factory=list)

    def move(self, to: OpportunityState, at: datetime, reason: str) -> None:
        """Append the transition and change state (legality is checked by the Ledger)."""
        self.history.append(Transition(at, self.state.value if self.history else None, to.value, reason))
        self.state = to


def _decision_dict(decision: Decision | None) -> dict[str, Any]:
    if decision is None:
        return {"verdict": Verdict.ALLOW.value, "reasons": []}
    return {"verdict": decision.verdict.value,
            "reasons": [{"rule": r.rule, "verdict": r.verdict.value, "message": r.message} for r in decision.reasons]}


def _why(decision: Decision | None) -> str:
    """The transition reason for a guardrail verdict: the strongest reason's text."""
    if decision is None:
        return "detected (no guardrail decision)"
    strongest = [r for r in decision.reasons if r.verdict == decision.verdict and r.verdict != Verdict.ALLOW]
    if not strongest:
        return "detected; allowed by the guardrails"
    return f"{decision.verdict.value} by {strongest[0].rule}: {strongest[0].message}"


def _baseline(finding: Finding) -> float | None:
    return finding.cost_before


def material_change(old_savings: float | None, new_savings: float) -> bool:
    """Savings moved more than 20% (of the old value) or changed direction."""
    if old_savings is None:
        return True
    if (old_savings < 0) != (new_savings < 0):
        return True
    if old_savings == 0:
        return new_savings != 0
    return abs(new_savings - old_savings) > MATERIAL_CHANGE * abs(old_savings)


@dataclass(frozen=True, slots=True)
class Proposal:
    """What a rejected pull request carried: the input of the reopen rule."""

    fingerprint: str | None
    savings: float | None


def should_reopen(rejected: Proposal, fingerprint: str, savings: float) -> bool:
    """THE reopen rule: propose a rejected change again only after a material change (module docstring)."""
    return fingerprint != rejected.fingerprint and material_change(rejected.savings, savings)


class Ledger:
    """Opportunities by finding id."""

    def __init__(self, opportunities: list[Opportunity] | None = None):
        self._items: dict[str, Opportunity] = {o.id: o for o in opportunities or []}

    # ------------------------------------------------------------------ access
    def __contains__(self, opportunity_id: str) -> bool:
        return opportunity_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, opportunity_id: str) -> Opportunity:
        try:
            return self._items[opportunity_id]
        except KeyError:
            raise LedgerError(f"no opportunity with id {opportunity_id!r}; observe the finding first",
                              source="ledger", field=opportunity_id) from None

    @property
    def opportunities(self) -> list[Opportunity]:
        return [self._items[k] for k in sorted(self._items)]

    # ------------------------------------------------------------------ observe
    def observe(self, findings: list[Finding], decisions: dict[str, Decision], now: datetime, *,
                covered: Callable[[Opportunity], bool] | None = None) -> list[Opportunity]:
        """Record one run's findings; returns the opportunities that changed.

        ``covered(opp)`` says whether this run looked at an opportunity's scope
        (its detector ran successfully); only covered ones that were not found
        again are superseded, so a disabled or failing detector never erases its
        opportunities. ``None`` means everything was covered.

        A Proposed opportunity is never superseded: its pull request is still open
        and stays tracked (merged -> Merged and verified, closed -> Rejected); the
        disappearance is recorded once in its history.
        """
        changed: dict[str, Opportunity] = {}
        seen = set()
        for finding in findings:
            if finding.id in seen:
                continue
            seen.add(finding.id)
            opp = self._observe_one(finding, decisions.get(finding.id), now)
            if opp is not None:
                changed[opp.id] = opp
        for opp in self.opportunities:
            if opp.id in seen or opp.state in DONE or opp.state == S.SUPERSEDED:
                continue
            if covered is not None and not covered(opp):
                continue
            if opp.state == S.PROPOSED:
                if opp.history and opp.history[-1].reason.startswith(_GONE_WHILE_OPEN):
                    continue
                opp.move(S.PROPOSED, now, f"{_GONE_WHILE_OPEN}; its pull request {opp.pr_url or opp.branch} "
                                          "stays tracked until it is merged or closed")
            else:
                opp.move(S.SUPERSEDED, now,
                         "no longer detected (usage or configuration changed, or the target is gone)")
            changed[opp.id] = opp
        return [changed[k] for k in sorted(changed)]

    def _observe_one(self, finding: Finding, decision: Decision | None, now: datetime) -> Opportunity | None:
        opp = self._items.get(finding.id)
        if opp is None:
            opp = self._new(finding, decision, now)
            self._items[opp.id] = opp
            return opp
        before = (opp.state, opp.fingerprint, opp.estimated_monthly_savings, opp.decision, opp.confidence, opp.risk)
        if opp.state in DONE and finding.fingerprint != opp.fingerprint:
            self._new_cycle(opp, finding, now)
        wanted = _BY_VERDICT[decision.verdict] if decision else S.DETECTED
        if opp.state in PRE_PR | {S.SUPERSEDED} and opp.state != wanted:
            reason = _why(decision) if opp.state != S.SUPERSEDED else f"detected again; {_why(decision)}"
            opp.move(wanted, now, reason)
        elif opp.state in (S.PROPOSED, S.REJECTED) and finding.fingerprint != opp.fingerprint:
            material = "material" if material_change(opp.proposed_savings, finding.monthly_savings) else "not material"
            opp.move(opp.state, now, f"recommendation changed: fingerprint {opp.fingerprint} -> {finding.fingerprint}, "
                                     f"savings {usd(opp.estimated_monthly_savings)} -> {usd(finding.monthly_savings)} "
                                     f"({material})")
        if opp.state not in DONE:
            self._refresh(opp, finding, decision)
        opp.last_seen = now
        after = (opp.state, opp.fingerprint, opp.estimated_monthly_savings, opp.decision, opp.confidence, opp.risk)
        return opp if after != before else None

    def _new(self, finding: Finding, decision: Decision | None, now: datetime) -> Opportunity:
        opp = Opportunity(
            id=finding.id, detector=finding.detector, type=finding.type.value, target=str(finding.target),
            namespace=finding.target.namespace, team=finding.team, cluster=finding.cluster, state=S.DETECTED,
            estimated_monthly_savings=finding.monthly_savings, confidence=finding.confidence, risk=finding.risk,
            fingerprint=finding.fingerprint, first_seen=now, last_seen=now)
        self._refresh(opp, finding, decision)
        opp.move(_BY_VERDICT[decision.verdict] if decision else S.DETECTED, now, _why(decision))
        return opp

    @staticmethod
    def _refresh(opp: Opportunity, finding: Finding, decision: Decision | None) -> None:
        opp.estimated_monthly_savings = finding.monthly_savings
        opp.confidence, opp.risk, opp.fingerprint = finding.confidence, finding.risk, finding.fingerprint
        opp.changes = [{"field": c.field, "before": c.before, "after": c.after} for c in finding.changes]
        opp.decision = _decision_dict(decision)
        opp.team, opp.cluster = finding.team or opp.team, finding.cluster or opp.cluster
        opp.baseline_monthly_cost = _baseline(finding) if _baseline(finding) is not None else opp.baseline_monthly_cost

    @staticmethod
    def _new_cycle(opp: Opportunity, finding: Finding, now: datetime) -> None:
        """Archive a merged/verified cycle and start over for a new recommendation on the same target."""
        opp.past_cycles.append({
            "fingerprint": opp.fingerprint, "state": opp.state.value,
            "estimated_monthly_savings": opp.estimated_monthly_savings,
            "realized_monthly_savings": opp.realized_monthly_savings,
            "baseline_monthly_cost": opp.baseline_monthly_cost, "pr_url": opp.pr_url, "pr_number": opp.pr_number,
            "merged_at": _iso(opp.merged_at), "verified_at": _iso(opp.verified_at)})
        opp.move(S.DETECTED, now, f"new recommendation after the {opp.state.value.lower()} change "
                                  f"(fingerprint {opp.fingerprint} -> {finding.fingerprint}); previous cycle archived")
        opp.realized_monthly_savings = opp.merged_at = opp.verified_at = None
        opp.pr_url = opp.pr_number = opp.branch = opp.change_set = None
        opp.proposed_fingerprint = opp.proposed_savings = None

    # ------------------------------------------------------------------ PR lifecycle
    def _step(self, opportunity_id: str, allowed: frozenset[OpportunityState], action: str) -> Opportunity:
        opp = self.get(opportunity_id)
        if opp.state not in allowed:
            names = ", ".join(sorted(s.value for s in allowed))
            raise LedgerError(f"{opp.target}: cannot {action} an opportunity in state {opp.state.value} "
                              f"(only from {names})", source="ledger", field=opportunity_id)
        return opp

    def proposed(self, opportunity_id: str, pr_url: str, pr_number: int | None, branch: str, change_set: str,
                 now: datetime) -> Opportunity:
        """A PR was opened (or updated, or reopened after a material change)."""
        opp = self._step(opportunity_id, frozenset({S.DETECTED, S.PROPOSED, S.REJECTED}), "propose")
        if opp.state == S.PROPOSED:
            if (opp.pr_url, opp.pr_number, opp.branch, opp.proposed_fingerprint) == (pr_url, pr_number, branch,
                                                                                      opp.fingerprint):
                return opp
            reason = f"pull request updated: {pr_url}"
        elif opp.state == S.REJECTED:
            reason = f"proposed again after a material change: {pr_url}"
        else:
            reason = f"pull request opened: {pr_url}"
        opp.pr_url, opp.pr_number, opp.branch, opp.change_set = pr_url, pr_number, branch, change_set
        opp.proposed_fingerprint, opp.proposed_savings = opp.fingerprint, opp.estimated_monthly_savings
        opp.move(S.PROPOSED, now, reason)
        return opp

    def merged(self, opportunity_id: str, merged_at: datetime) -> Opportunity:
        opp = self._step(opportunity_id, frozenset({S.PROPOSED, S.MERGED}), "mark merged")
        if opp.state == S.PROPOSED:
            opp.merged_at = merged_at
            opp.move(S.MERGED, merged_at, f"pull request merged: {opp.pr_url}")
        return opp

    def closed(self, opportunity_id: str, now: datetime) -> Opportunity:
        opp = self._step(opportunity_id, frozenset({S.PROPOSED, S.REJECTED}), "mark rejected")
        if opp.state == S.PROPOSED:
            opp.move(S.REJECTED, now, f"pull request closed without merging: {opp.pr_url}")
        return opp

    def withdrawn(self, opportunity_id: str, now: datetime, reason: str) -> Opportunity:
        """The operator closed the opportunity's own pull request: not a human's rejection (no reopen rule)."""
        opp = self._step(opportunity_id, frozenset({S.PROPOSED, S.SUPERSEDED}), "withdraw")
        if opp.state == S.PROPOSED:
            opp.move(S.SUPERSEDED, now, f"pull request {opp.pr_url or opp.branch} closed by the operator: {reason}")
        return opp

    def verify(self, opportunity_id: str, realized_monthly_savings: float, now: datetime,
               settle: timedelta) -> bool:
        """Record realized savings once the change has settled; False (nothing changes) before that."""
        opp = self._step(opportunity_id, frozenset({S.MERGED}), "verify")
        if opp.merged_at is None:
            raise LedgerError(f"{opp.target}: merged without a merge time; call merged() with it",
                              source="ledger", field=opportunity_id)
        if now < opp.merged_at + settle:
            return False
        opp.realized_monthly_savings, opp.verified_at = round(realized_monthly_savings, 2), now
        estimated = opp.estimated_monthly_savings
        opp.move(S.VERIFIED, now, f"realized {usd(realized_monthly_savings)}/month vs estimated {usd(estimated)}/month"
                                  f" after settling {_duration(settle)}")
        return True

    # ------------------------------------------------------------------ queries
    def changes_on(self, day: date, tz: tzinfo = timezone.utc) -> int:
        """Proposals (new, or reopened) made on ``day`` in ``tz``: feeds the daily guardrail.

        Every move into Proposed from another state counts, whatever happened to it
        since (merged, closed, superseded, still open). Updating an open PR is not a
        new proposal: :meth:`proposed_ids` lets the guardrails exempt those findings,
        so no slot of the day is ever handed out twice.
        """
        return sum(1 for opp in self._items.values() for t in opp.history
                   if t.to_state == S.PROPOSED.value and t.from_state != S.PROPOSED.value
                   and t.at.astimezone(tz).date() == day)

    def proposed_ids(self) -> frozenset[str]:
        """Finding ids whose pull request is open (a run updates it; not a new change)."""
        return frozenset(opp.id for opp in self._items.values() if opp.state == S.PROPOSED)

    def rejected(self) -> dict[str, Proposal]:
        """Finding id -> what its rejected pull request carried (input of the reopen rule)."""
        return {opp.id: Proposal(opp.proposed_fingerprint, opp.proposed_savings)
                for opp in self._items.values() if opp.state == S.REJECTED}

    def open_prs(self) -> int:
        """Distinct pull requests (change sets) with a Proposed opportunity."""
        return len({opp.change_set or opp.branch or opp.pr_url for opp in self._items.values()
                    if opp.state == S.PROPOSED})

    def open_change_sets(self) -> dict[str, str]:
        """Finding id -> change set id of its open PR (``existing`` for plan_change_sets)."""
        return {opp.id: opp.change_set for opp in self.opportunities if opp.state == S.PROPOSED and opp.change_set}

    def totals(self, by: str | None = None) -> dict[str, Any]:
        """Estimated vs realized savings and counts per state, overall or by team|type|cluster|namespace."""
        if by not in (None, "team", "type", "cluster", "namespace"):
            raise LedgerError(f"cannot group totals by {by!r}; use team, type, cluster or namespace", field="by")
        result: dict[str, Any] = {"total": _summary(self._items.values())}
        if by is not None:
            groups: dict[str, list[Opportunity]] = {}
            for opp in self._items.values():
                groups.setdefault(getattr(opp, by) or "(none)", []).append(opp)
            result["by"] = by
            result["groups"] = {key: _summary(groups[key]) for key in sorted(groups)}
        return result


LIVE = frozenset({S.DETECTED, S.BLOCKED, S.NEEDS_APPROVAL, S.PROPOSED, S.MERGED, S.VERIFIED})


def _summary(opps: Any) -> dict[str, Any]:
    opps = list(opps)
    realized = sum(o.realized_monthly_savings or 0.0 for o in opps if o.state == S.VERIFIED)
    realized += sum(c.get("realized_monthly_savings") or 0.0 for o in opps for c in o.past_cycles)
    return {
        "opportunities": len(opps),
        "counts": {state.value: sum(1 for o in opps if o.state == state) for state in S},
        "estimated": round(sum(o.estimated_monthly_savings for o in opps if o.state in LIVE), 2),
        "estimated_open": round(sum(o.estimated_monthly_savings for o in opps if o.state in PRE_PR | {S.PROPOSED}), 2),
        "estimated_implemented": round(sum(o.estimated_monthly_savings for o in opps if o.state in DONE), 2),
        "estimated_verified": round(sum(o.estimated_monthly_savings for o in opps if o.state == S.VERIFIED), 2),
        "realized": round(realized, 2),
        "baseline": round(sum(o.baseline_monthly_cost or 0.0 for o in opps if o.state in LIVE), 2),
    }


def _duration(value: timedelta) -> str:
    """'7 days', '36 hours', '90 minutes' for reasons."""
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
