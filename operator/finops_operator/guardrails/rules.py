"""Guardrail rules: one small function per rule, each returning the Reasons it fired.

Every rule has the signature ``rule(finding, settings, context) -> list[Reason]``
and is pure (``context.now`` is injected; no clock, no I/O). A rule that has
nothing to say returns ``[]``; a rule may also return an ALLOW reason when the
allow is worth recording (inside a change window, a safety raise's exemption).

Choices, documented here because reviewers will ask:

* **maxSingleChangeDollars -> DENY.** A single change saving more than this is
  too large to automate at all (split it or raise the limit). The approval tier
  below it is ``approvalAboveDollars``, which gives REQUIRE_APPROVAL; with the
  defaults ($200 / $500) findings worth $200-$500 need approval and those above
  $500 are denied.
* **maxSingleChangePercent -> REQUIRE_APPROVAL.** A deep relative cut (1 core ->
  100m) is where right-sizers break things, but it is often exactly right for an
  idle service; a human looks at the evidence in the PR and approves. The cut is
  measured per Change from ``before``/``after`` with Kubernetes units (CPU,
  memory) or as plain numbers (node group sizes); adding a value (before None),
  removing a limit (after None) and deleting a volume are not "cuts" and are
  governed by the dollar rules only. An unparseable value gives DENY (the
  detector output is broken; nothing should be proposed from it).
* **Every change is checked against the percent limit**, whatever the finding's
  total savings: a finding that raises a request and cuts a limit has its cut
  checked like any other cut.
* **Raises are bounded by the mirror of the deepest allowed cut**: with a limit
  of P%, a cut may take a value down to (1 - P/100) x, and a raise may take it up
  to 1 / (1 - P/100) x (50% -> at most double, 75% -> at most 4x; 100% leaves
  raises unbounded). A bigger raise needs approval (REQUIRE_APPROVAL), as a deep
  cut does.
* **Safety raises** (negative savings: an OOM or throttling fix) skip the
  approval threshold - delaying an OOM fix for a cost sign-off causes outages -
  but not the hard limits: one that costs more than maxSingleChangeDollars per
  month, or raises a value beyond the bound above, needs a human
  (REQUIRE_APPROVAL, not DENY: a person may well accept it). Protected labels,
  change windows and minimum confidence apply as to any change. Maximum risk
  does not apply to a safety raise that only raises values (or removes a
  limit): the risk score rates how close the new values run to the observed
  peaks, and an OOM-killed container's peak is its old limit, so an OOM bump
  scored about 70% and the default 60% denied every OOM fix, while leaving the
  container as it is runs the higher risk (measured on the quality benchmark:
  14 of 200 workloads kept OOMing unattended).
* **Rejected by a human** (a closed PR, a deleted branch): DENY until the
  recommendation changes materially (:func:`finops_operator.ledger.should_reopen`,
  the one reopen rule).
* **Protected labels** match a label/tag key exactly and its value
  case-insensitively (AWS tags are often ``Production``); a protected value of
  ``"*"`` matches any value of that key.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from ..errors import QuantityError
from ..ledger import REOPEN_PROMISE, Proposal, should_reopen
from ..models import Change, Finding, Reason, Verdict
from ..money import usd
from ..settings import GuardrailSettings, Mode
from ..units import parse_cpu, parse_memory
from . import windows


@dataclass
class GuardrailContext:
    """What the rules need besides the finding and the settings (all injected)."""

    now: datetime                             # aware; the test seam, never datetime.now() in rules
    changes_today: int = 0                    # changes already proposed today (ledger.changes_on)
    open_prs: int = 0                         # PRs the operator currently has open (ledger.open_prs)
    approved: frozenset[str] = frozenset()    # finding ids a human approved
    mode: Mode = Mode.PULL_REQUEST
    proposed: frozenset[str] = frozenset()    # finding ids whose PR is open (ledger.proposed_ids): an update
    rejected: Mapping[str, Proposal] = field(default_factory=dict)   # finding id -> its closed PR (ledger.rejected)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("GuardrailContext.now must be timezone-aware (e.g. datetime.now(timezone.utc))")


Rule = Callable[[Finding, GuardrailSettings, GuardrailContext], list[Reason]]

APPROVAL_ANNOTATION = "finops.dev/approved"   # the one name: on a SavingsOpportunity, "true" approves it


def approves(annotations: Mapping[str, Any] | None) -> bool:
    """Whether annotations carry the approval (``"true"``, any case, spaces ignored)."""
    value = annotations.get(APPROVAL_ANNOTATION) if isinstance(annotations, Mapping) else None
    return isinstance(value, str) and value.strip().lower() == "true"


def min_confidence(finding: Finding, settings: GuardrailSettings, context: GuardrailContext) -> list[Reason]:
    """Deny findings whose data is too thin or too volatile to trust."""
    if finding.confidence * 100 < settings.min_confidence_percent:
        return [Reason("min-confidence", Verdict.DENY,
                       f"confidence {finding.confidence * 100:.0f}% is below the minimum "
                       f"{settings.min_confidence_percent}% (guardrails.minConfidencePercent)")]
    return []


def max_risk(finding: Finding, settings: GuardrailSettings, context: GuardrailContext) -> list[Reason]:
    """Deny findings whose new value runs too close to observed peaks (not a safety raise that only raises:
    it runs less close than the current values do)."""
    if finding.risk * 100 > settings.max_risk_percent and not (finding.is_increase and only_raises(finding)):
        return [Reason("max-risk", Verdict.DENY,
                       f"risk {finding.risk * 100:.0f}% is above the maximum "
                       f"{settings.max_risk_percent}% (guardrails.maxRiskPercent)")]
    return []


def safety_raise(finding: Finding, settings: GuardrailSettings, context: GuardrailContext) -> list[Reason]:
    """Record which limits a raise skips and which still hold (see the module docstring)."""
    if not finding.is_increase:
        return []
    return [Reason("safety-raise", Verdict.ALLOW,
                   f"safety raise (costs {usd(-finding.monthly_savings)}/month more): exempt from the "
                   "approval threshold, and from the risk maximum when it only raises; the single-change "
                   "limits, protection, change windows and confidence still apply")]


def max_single_change_dollars(finding: Finding, settings: GuardrailSettings,
                              context: GuardrailContext) -> list[Reason]:
    """Deny a cut worth more than the hard dollar cap; a raise costing more than it needs approval."""
    amount = abs(finding.monthly_savings)
    if amount <= settings.max_single_change_dollars:
        return []
    limit = usd(settings.max_single_change_dollars)
    if finding.is_increase:
        return [Reason("max-single-change", Verdict.REQUIRE_APPROVAL,
                       f"safety raise costs {usd(amount)}/month more, above the single-change limit {limit} "
                       "(guardrails.maxSingleChangeDollars); a human decides")]
    return [Reason("max-single-change", Verdict.DENY,
                   f"saves {usd(amount)}/month, above the single-change limit {limit} "
                   "(guardrails.maxSingleChangeDollars); split the change or raise the limit")]


def max_single_change_percent(finding: Finding, settings: GuardrailSettings,
                              context: GuardrailContext) -> list[Reason]:
    """Require approval for any change (cut or raise) beyond the percent limit; deny unreadable values."""
    limit = settings.max_single_change_percent
    worst: tuple[float, str, Change] | None = None            # (how far over the limit, description, change)
    for change in finding.changes:
        try:
            ratio = change_ratio(change)
        except QuantityError as exc:
            return [Reason("max-single-change-percent", Verdict.DENY,
                           f"cannot read {change.field} ({change.before!r} -> {change.after!r}): "
                           f"{exc.message}; the finding is malformed, nothing is proposed")]
        if ratio is None or ratio == 1:
            continue
        excess, text = _excess(change, ratio, limit)
        if excess > 0 and (worst is None or excess > worst[0]):
            worst = (excess, text, change)
    if worst is None:
        return []
    return [Reason("max-single-change-percent", Verdict.REQUIRE_APPROVAL,
                   f"{worst[1]} (guardrails.maxSingleChangePercent)")]


def _excess(change: Change, ratio: float, limit: int) -> tuple[float, str]:
    """How far a change (ratio = after / before) goes beyond the limit (> 0: beyond), and why, in words."""
    values = f"({change.before} -> {change.after})"
    if ratio < 1:
        cut = (1 - ratio) * 100
        return cut - limit, f"cuts {change.field} by {cut:.0f}% {values}, more than the {limit}% limit"
    if limit >= 100:
        return -1.0, ""
    bound = 1 / (1 - limit / 100)
    return ratio - bound, (f"raises {change.field} {ratio:.2f}x {values}, more than the {bound:.2f}x a "
                           f"{limit}% limit allows for a raise")


def change_ratio(change: Change) -> float | None:
    """after / before of a numeric change; None when it is not one (a value added or removed, a non-number)."""
    if change.before is None or change.after is None:
        return None
    leaf = change.field.rsplit(".", 1)[-1]
    if leaf == "cpu":
        before, after = parse_cpu(change.before, what=change.field), parse_cpu(change.after, what=change.field)
    elif leaf in ("memory", "ephemeral-storage"):
        before = parse_memory(change.before, what=change.field)
        after = parse_memory(change.after, what=change.field)
    elif leaf in ("desired_size", "min_size", "max_size", "size"):
        before, after = _number(change.before, change.field), _number(change.after, change.field)
    else:
        return None
    if not (math.isfinite(before) and math.isfinite(after)):
        raise QuantityError(f"{change.field}: {change.before!r} -> {change.after!r} is not a finite change")
    if before <= 0:
        return None if after <= 0 else math.inf
    return after / before


def only_raises(finding: Finding) -> bool:
    """Whether every change raises a numeric value or removes a limit (an unreadable value: no)."""
    try:
        return bool(finding.changes) and all(
            (change.after is None and change.before is not None) or (change_ratio(change) or 0.0) >= 1.0
            for change in finding.changes)
    except QuantityError:
        return False


def cut_percent(change: Change) -> float | None:
    """How much a change cuts, in percent of the current value; None when it is not a numeric cut."""
    ratio = change_ratio(change)
    if ratio is None or ratio >= 1:
        return None
    return (1 - ratio) * 100


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise QuantityError(f"{what}: {text!r} is not a number") from None
    if value < 0:
        raise QuantityError(f"{what}: {text!r} is negative")
    return value


def approval_threshold(finding: Finding, settings: GuardrailSettings, context: GuardrailContext) -> list[Reason]:
    """Findings worth more than approvalAboveDollars need a human."""
    if finding.is_increase or finding.monthly_savings <= settings.approval_above_dollars:
        return []
    return [Reason("approval-threshold", Verdict.REQUIRE_APPROVAL,
                   f"saves {usd(finding.monthly_savings)}/month, above the approval threshold "
                   f"{usd(settings.approval_above_dollars)} (guardrails.approvalAboveDollars)")]


def rejected_by_human(finding: Finding, settings: GuardrailSettings, context: GuardrailContext) -> list[Reason]:
    """A change a human rejected stays rejected until the recommendation changes materially."""
    rejected = context.rejected.get(finding.id)
    if rejected is None:
        return []
    if should_reopen(rejected, finding.fingerprint, finding.monthly_savings):
        return [Reason("rejected", Verdict.ALLOW, "rejected earlier; proposed again: the recommendation changed "
                                                  "materially")]
    return [Reason("rejected", Verdict.DENY, f"a human closed its pull request. {REOPEN_PROMISE}")]


def protected_labels(finding: Finding, settings: GuardrailSettings, context: GuardrailContext) -> list[Reason]:
    """Targets carrying a protected label/tag get protectedAction (Deny or RequireApproval)."""
    verdict = Verdict.DENY if settings.protected_action == "Deny" else Verdict.REQUIRE_APPROVAL
    reasons = []
    for key, wanted in sorted(settings.protected_labels.items()):
        if key not in finding.labels:
            continue
        actual = finding.labels[key]
        if wanted == "*" or str(actual).lower() == str(wanted).lower():
            reasons.append(Reason("protected-labels", verdict,
                                  f"target carries protected label {key}={actual} "
                                  f"(guardrails.protectedAction {settings.protected_action})"))
    return reasons


def change_window(finding: Finding, settings: GuardrailSettings, context: GuardrailContext) -> list[Reason]:
    """Outside every configured change window -> deny, naming when the next one opens."""
    if not settings.change_windows:
        return []
    hit = windows.matching(context.now, list(settings.change_windows))
    if hit is not None:
        return [Reason("change-window", Verdict.ALLOW, f"inside change window {windows.describe(hit)}")]
    upcoming = windows.next_opening(context.now, list(settings.change_windows))
    if upcoming is None:
        return [Reason("change-window", Verdict.DENY,
                       "outside change window; no window ever opens (check guardrails.changeWindows days)")]
    return [Reason("change-window", Verdict.DENY,
                   f"outside change window; next window opens {windows.format_local(upcoming.at)}")]


# Order matters only for the order reasons are listed in a decision.
RULES: tuple[Rule, ...] = (
    min_confidence,
    max_risk,
    safety_raise,
    max_single_change_dollars,
    max_single_change_percent,
    approval_threshold,
    protected_labels,
    change_window,
    rejected_by_human,
)
