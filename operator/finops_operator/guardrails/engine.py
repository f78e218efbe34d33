"""Run every guardrail rule over a batch of findings and decide allow / deny / require approval.

    findings -> per-finding rules -> mode and approvals -> daily limit -> {finding id: Decision}

Each Decision keeps every Reason that fired, in rule order, so the decision is
auditable (it lands in the SavingsOpportunity status and in the PR body).

* **Mode.** ``RequireApproval`` turns an allow into require-approval unless the
  finding is approved; ``DryRun`` evaluates exactly as ``PullRequest`` does (the
  decisions are shown) and adds a note - the planner/actuator is what does not
  apply. ``PullRequest`` changes nothing.
* **Approvals** (``context.approved``, from the ``finops.dev/approved``
  annotation) turn require-approval into allow, with a reason naming the rules
  they overrode. They never override a deny.
* **Daily limit.** ``context.changes_today`` counts every proposal made today
  (``Ledger.changes_on``), open or not. A finding whose PR is already open
  (``context.proposed``) is an update, not a new change: it takes no slot. Only
  the other findings that end up ALLOW consume what is left
  (``maxChangesPerDay - changes_today``), so the limit holds across any number
  of runs in a day. Safety raises go first (they fix OOM kills and throttling),
  then the largest savings; ties by finding id so the result is deterministic.
  The rest are denied with "daily limit N reached".
"""
from __future__ import annotations

from ..models import Decision, Finding, Reason, Verdict
from ..settings import GuardrailSettings, Mode
from ..money import usd
from .rules import APPROVAL_ANNOTATION, RULES, GuardrailContext


def evaluate(findings: list[Finding], settings: GuardrailSettings, context: GuardrailContext,
             mode: Mode | None = None) -> dict[str, Decision]:
    """Decide every finding. ``mode`` overrides ``context.mode`` when given.

    A finding id seen twice in ``findings`` is decided once (the first wins).
    """
    effective = mode if mode is not None else context.mode
    decisions: dict[str, Decision] = {}
    unique: list[Finding] = []
    for finding in findings:
        if finding.id in decisions:
            continue
        reasons = [reason for rule in RULES for reason in rule(finding, settings, context)]
        reasons = _apply_mode(reasons, effective)
        reasons = _apply_approval(reasons, approved=finding.id in context.approved)
        decisions[finding.id] = Decision.from_reasons(finding.id, reasons)
        unique.append(finding)
    _apply_daily_limit(unique, decisions, settings, context)
    return decisions


def _verdict(reasons: list[Reason]) -> Verdict:
    return max((r.verdict for r in reasons), key=lambda v: v.severity, default=Verdict.ALLOW)


def _apply_mode(reasons: list[Reason], mode: Mode) -> list[Reason]:
    if mode == Mode.REQUIRE_APPROVAL and _verdict(reasons) == Verdict.ALLOW:
        return reasons + [Reason("mode", Verdict.REQUIRE_APPROVAL,
                                 f"mode RequireApproval: every change needs a human approval "
                                 f"(annotate the SavingsOpportunity {APPROVAL_ANNOTATION}=\"true\")")]
    if mode == Mode.DRY_RUN:
        return reasons + [Reason("mode", Verdict.ALLOW,
                                 "mode DryRun: decision shown only; nothing is proposed")]
    return reasons


def _apply_approval(reasons: list[Reason], *, approved: bool) -> list[Reason]:
    """Approved: require-approval reasons become allow (kept, marked); a deny stays a deny."""
    if not approved:
        return reasons
    verdict = _verdict(reasons)
    if verdict == Verdict.DENY:
        return reasons + [Reason("approval", Verdict.ALLOW,
                                 "approved by a human, but an approval never overrides a deny")]
    overridden = [r for r in reasons if r.verdict == Verdict.REQUIRE_APPROVAL]
    if not overridden:
        return reasons + [Reason("approval", Verdict.ALLOW, "approved by a human (no approval was needed)")]
    rules = ", ".join(dict.fromkeys(r.rule for r in overridden))
    kept = [Reason(r.rule, Verdict.ALLOW, f"{r.message} [approved]") if r.verdict == Verdict.REQUIRE_APPROVAL
            else r for r in reasons]
    return kept + [Reason("approval", Verdict.ALLOW, f"approved by a human; overrides the approval required by {rules}")]


def daily_order(finding: Finding) -> tuple[int, float, str]:
    """Safety raises first, then the largest savings, then by id."""
    return (0 if finding.is_increase else 1, -abs(finding.monthly_savings), finding.id)


def _apply_daily_limit(findings: list[Finding], decisions: dict[str, Decision],
                       settings: GuardrailSettings, context: GuardrailContext) -> None:
    allowed = sorted((f for f in findings if decisions[f.id].verdict == Verdict.ALLOW
                      and f.id not in context.proposed), key=daily_order)
    budget = max(0, settings.max_changes_per_day - max(0, context.changes_today))
    for finding in allowed[budget:]:
        decision = decisions[finding.id]
        reasons = decision.reasons + [Reason(
            "max-changes-per-day", Verdict.DENY,
            f"daily limit {settings.max_changes_per_day} reached ({context.changes_today} proposed earlier today, "
            f"{budget} left for {len(allowed)} allowed findings, {usd(finding.monthly_savings)}/month "
            "waits for tomorrow; guardrails.maxChangesPerDay)")]
        decisions[finding.id] = Decision.from_reasons(finding.id, reasons)
