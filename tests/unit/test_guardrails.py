"""Guardrail rules and the engine: each rule's verdict and reason text, modes, approvals, daily limit."""
from __future__ import annotations

from datetime import datetime

import pytest

from finops_operator.guardrails import GuardrailContext, cut_percent, evaluate
from finops_operator.models import Change, Verdict
from finops_operator.settings import GuardrailSettings, Mode, load_policy
from tests.support.fixtures_guardrails import NOW, container_finding, node_group_finding, volume_finding


def decide(finding, settings=None, **context):
    settings = settings or GuardrailSettings()
    ctx = GuardrailContext(now=context.pop("now", NOW), **context)
    return evaluate([finding], settings, ctx)[finding.id]


def rules_of(decision, verdict=None):
    return [r.rule for r in decision.reasons if verdict is None or r.verdict == verdict]


def test_plain_finding_is_allowed_without_noise():
    decision = decide(container_finding(savings=50))
    assert decision.verdict == Verdict.ALLOW
    assert decision.reasons == []


def test_min_confidence_denies_with_numbers():
    decision = decide(container_finding(confidence=0.45))
    assert decision.verdict == Verdict.DENY
    [reason] = decision.reasons
    assert reason.rule == "min-confidence"
    assert reason.message == "confidence 45% is below the minimum 60% (guardrails.minConfidencePercent)"


def test_min_confidence_boundary_is_inclusive():
    assert decide(container_finding(confidence=0.60)).verdict == Verdict.ALLOW


def test_max_risk_denies():
    decision = decide(container_finding(risk=0.75), GuardrailSettings(max_risk_percent=50))
    assert decision.verdict == Verdict.DENY
    assert decision.reasons[0].message == "risk 75% is above the maximum 50% (guardrails.maxRiskPercent)"


def test_max_single_change_dollars_denies_and_approval_tier_below_it():
    settings = GuardrailSettings(max_single_change_dollars=500, approval_above_dollars=200)
    big = decide(container_finding(savings=650), settings)
    assert big.verdict == Verdict.DENY
    assert "max-single-change" in rules_of(big, Verdict.DENY)
    assert "saves $650.00/month, above the single-change limit $500.00" in big.reasons[0].message
    middle = decide(container_finding(savings=300), settings)
    assert middle.verdict == Verdict.REQUIRE_APPROVAL
    assert rules_of(middle) == ["approval-threshold"]
    assert middle.reasons[0].message == ("saves $300.00/month, above the approval threshold $200.00 "
                                         "(guardrails.approvalAboveDollars)")
    assert decide(container_finding(savings=200), settings).verdict == Verdict.ALLOW


def test_percent_cut_requires_approval_and_names_the_field():
    finding = container_finding(cpu=("2", "200m"))      # a 90% cut
    decision = decide(finding, GuardrailSettings(max_single_change_percent=75))
    assert decision.verdict == Verdict.REQUIRE_APPROVAL
    assert decision.reasons[0].rule == "max-single-change-percent"
    assert decision.reasons[0].message == ("cuts resources.requests.cpu by 90% (2 -> 200m), more than the 75% "
                                           "limit (guardrails.maxSingleChangePercent)")
    assert decide(container_finding(cpu=("2", "500m")), GuardrailSettings(max_single_change_percent=75)).verdict \
        == Verdict.ALLOW


def test_percent_cut_reads_memory_units():
    finding = container_finding(memory=("2Gi", "256Mi"))  # 87.5%
    decision = decide(finding, GuardrailSettings(max_single_change_percent=80))
    assert decision.verdict == Verdict.REQUIRE_APPROVAL
    assert "by 88% (2Gi -> 256Mi)" in decision.reasons[0].message
    assert decide(container_finding(memory=("1G", "512Mi")), GuardrailSettings(max_single_change_percent=50)) \
        .verdict == Verdict.ALLOW  # 1e9 -> 536870912 is a 46% cut


@pytest.mark.parametrize("change, expected", [
    (Change("resources.requests.cpu", "1000m", "250m"), 75.0),
    (Change("resources.limits.memory", "1Gi", "768Mi"), 25.0),
    (Change("desired_size", "4", "3"), 25.0),
    (Change("resources.requests.cpu", None, "100m"), None),       # adding a request is no cut
    (Change("resources.limits.cpu", "2", None), None),            # removing a limit is no cut
    (Change("delete", "present", None), None),
    (Change("resources.requests.cpu", "100m", "250m"), None),     # a raise
    (Change("instance_types", '["m5.xlarge"]', '["m5.large"]'), None),
])
def test_cut_percent(change, expected):
    assert cut_percent(change) == (pytest.approx(expected) if expected is not None else None)


def test_unreadable_value_denies_instead_of_crashing():
    decision = decide(container_finding(cpu=("two cores", "250m")))
    assert decision.verdict == Verdict.DENY
    assert decision.reasons[0].rule == "max-single-change-percent"
    assert "cannot read resources.requests.cpu ('two cores' -> '250m')" in decision.reasons[0].message
    assert "not a Kubernetes quantity" in decision.reasons[0].message


def test_safety_raise_skips_the_approval_threshold_but_not_protection():
    settings = GuardrailSettings(max_single_change_dollars=1000, approval_above_dollars=5, max_single_change_percent=50)
    raise_ = container_finding(memory=("256Mi", "512Mi"), savings=-900.0)
    decision = decide(raise_, settings)
    assert decision.verdict == Verdict.ALLOW
    assert rules_of(decision) == ["safety-raise"]
    assert decision.reasons[0].message.startswith("safety raise (costs $900.00/month more)")
    protected = container_finding(memory=("256Mi", "512Mi"), savings=-900.0, labels={"tier": "production"})
    settings = settings.model_copy(update={"protected_action": "Deny"})
    assert decide(protected, settings).verdict == Verdict.DENY


def test_a_raise_with_a_deep_cut_is_checked_change_by_change():
    """Issue 7 #11: a CPU request raise with a limit cut of 82.5% was allowed under a 50% limit."""
    from finops_operator.models import Change
    mixed = container_finding(cpu=("200m", "400m"), savings=-3.0)
    mixed.changes.append(Change("resources.limits.cpu", "2", "350m"))
    decision = decide(mixed, GuardrailSettings(max_single_change_percent=50))
    assert decision.verdict == Verdict.REQUIRE_APPROVAL
    reason = next(r for r in decision.reasons if r.rule == "max-single-change-percent")
    assert reason.message.startswith("cuts resources.limits.cpu by 82% (2 -> 350m), more than the 50% limit")


@pytest.mark.parametrize(("after", "limit", "verdict"), [
    ("512Mi", 50, Verdict.ALLOW), ("513Mi", 50, Verdict.REQUIRE_APPROVAL),      # 50%: at most double
    ("1Gi", 75, Verdict.ALLOW), ("2Gi", 75, Verdict.REQUIRE_APPROVAL),          # 75%: at most 4x
    ("64Gi", 100, Verdict.ALLOW),                                               # 100%: raises unbounded
])
def test_raises_are_bounded_by_the_mirror_of_the_deepest_allowed_cut(after, limit, verdict):
    raise_ = container_finding(memory=("256Mi", after), savings=-1.0)
    decision = decide(raise_, GuardrailSettings(max_single_change_percent=limit))
    assert decision.verdict == verdict
    if verdict != Verdict.ALLOW:
        assert f"raises resources.requests.memory" in decision.reasons[-1].message


def test_a_raise_over_the_dollar_limit_needs_a_human():
    raise_ = container_finding(memory=("256Mi", "300Mi"), savings=-900.0)
    decision = decide(raise_, GuardrailSettings(max_single_change_dollars=500, approval_above_dollars=200))
    assert decision.verdict == Verdict.REQUIRE_APPROVAL
    assert "safety raise costs $900.00/month more, above the single-change limit $500.00" in decision.reasons[-1].message


@pytest.mark.parametrize("action, verdict", [("Deny", Verdict.DENY), ("RequireApproval", Verdict.REQUIRE_APPROVAL)])
def test_protected_labels_follow_protected_action(action, verdict):
    settings = GuardrailSettings(protected_action=action)
    decision = decide(container_finding(labels={"tier": "production", "app": "api"}), settings)
    assert decision.verdict == verdict
    assert decision.reasons[0].rule == "protected-labels"
    assert decision.reasons[0].message == f"target carries protected label tier=production (guardrails.protectedAction {action})"


def test_protected_tags_on_volumes_match_case_insensitively_and_wildcards():
    assert decide(volume_finding(labels={"tier": "Production"})).verdict == Verdict.REQUIRE_APPROVAL
    assert decide(volume_finding(labels={"tier": "staging"})).verdict == Verdict.ALLOW
    settings = GuardrailSettings(protected_labels={"finops.dev/keep": "*"}, protected_action="Deny")
    assert decide(volume_finding(labels={"finops.dev/keep": "anything"}), settings).verdict == Verdict.DENY
    assert decide(volume_finding(labels={"other": "x"}), settings).verdict == Verdict.ALLOW


def test_mode_require_approval_then_approved():
    finding = container_finding()
    decision = decide(finding, mode=Mode.REQUIRE_APPROVAL)
    assert decision.verdict == Verdict.REQUIRE_APPROVAL
    assert decision.reasons[-1].rule == "mode"
    assert "finops.dev/approved" in decision.reasons[-1].message
    approved = decide(finding, mode=Mode.REQUIRE_APPROVAL, approved=frozenset({finding.id}))
    assert approved.verdict == Verdict.ALLOW
    assert approved.reasons[-1].message == "approved by a human; overrides the approval required by mode"
    assert all(r.verdict == Verdict.ALLOW for r in approved.reasons)


def test_mode_argument_overrides_context_mode():
    finding = container_finding()
    ctx = GuardrailContext(now=NOW, mode=Mode.REQUIRE_APPROVAL)
    assert evaluate([finding], GuardrailSettings(), ctx)[finding.id].verdict == Verdict.REQUIRE_APPROVAL
    assert evaluate([finding], GuardrailSettings(), ctx, Mode.PULL_REQUEST)[finding.id].verdict == Verdict.ALLOW


def test_approval_overrides_require_approval_rules_but_never_deny():
    settings = GuardrailSettings(approval_above_dollars=100)
    finding = container_finding(savings=300, labels={"tier": "production"})
    before = decide(finding, settings)
    assert before.verdict == Verdict.REQUIRE_APPROVAL
    after = decide(finding, settings, approved=frozenset({finding.id}))
    assert after.verdict == Verdict.ALLOW
    assert after.reasons[-1].message == ("approved by a human; overrides the approval required by "
                                         "approval-threshold, protected-labels")
    assert after.reasons[0].message.endswith("[approved]")
    denied = container_finding(savings=300, confidence=0.1)
    result = decide(denied, settings, approved=frozenset({denied.id}))
    assert result.verdict == Verdict.DENY
    assert result.reasons[-1].message == "approved by a human, but an approval never overrides a deny"


def test_dry_run_still_evaluates_and_notes_it():
    allowed = decide(container_finding(), mode=Mode.DRY_RUN)
    assert allowed.verdict == Verdict.ALLOW
    assert allowed.reasons[-1].message == "mode DryRun: decision shown only; nothing is proposed"
    assert decide(container_finding(confidence=0.1), mode=Mode.DRY_RUN).verdict == Verdict.DENY


def test_daily_limit_keeps_largest_savings_and_raises_first():
    findings = [container_finding(workload=f"w{i}", savings=s) for i, s in enumerate([10, 90, 40, 70, 20])]
    raise_ = container_finding(workload="oom", memory=("256Mi", "384Mi"), savings=-5)
    denied = container_finding(workload="thin", confidence=0.2, savings=600)
    ctx = GuardrailContext(now=NOW, changes_today=1)
    decisions = evaluate(findings + [raise_, denied], GuardrailSettings(max_changes_per_day=4), ctx)
    allowed = {f.monthly_savings for f in findings + [raise_] if decisions[f.id].verdict == Verdict.ALLOW}
    assert allowed == {-5, 90, 70}
    limited = decisions[findings[0].id]
    assert limited.verdict == Verdict.DENY
    assert limited.reasons[-1].rule == "max-changes-per-day"
    assert limited.reasons[-1].message.startswith("daily limit 4 reached (1 proposed earlier today, 3 left")
    # the low-confidence one was denied by its own rule, and did not use a slot
    assert rules_of(decisions[denied.id]) == ["min-confidence", "max-single-change", "approval-threshold"]


def test_daily_limit_ignores_findings_waiting_for_approval():
    waiting = container_finding(workload="big", savings=300)          # needs approval (> $200)
    small = container_finding(workload="small", savings=20)
    decisions = evaluate([waiting, small], GuardrailSettings(max_changes_per_day=1), GuardrailContext(now=NOW))
    assert decisions[waiting.id].verdict == Verdict.REQUIRE_APPROVAL
    assert decisions[small.id].verdict == Verdict.ALLOW


def test_daily_limit_already_used_up_and_zero_budget():
    finding = container_finding()
    decision = decide(finding, GuardrailSettings(max_changes_per_day=3), changes_today=3)
    assert decision.verdict == Verdict.DENY
    assert "daily limit 3 reached (3 proposed earlier today, 0 left" in decision.reasons[-1].message


def test_evaluate_is_deterministic_and_decides_duplicates_once():
    a = container_finding(workload="a", savings=30)
    b = container_finding(workload="b", savings=30)
    settings = GuardrailSettings(max_changes_per_day=1)
    first = evaluate([a, b, a], settings, GuardrailContext(now=NOW))
    second = evaluate([b, a], settings, GuardrailContext(now=NOW))
    assert set(first) == {a.id, b.id}
    assert {k: v.verdict for k, v in first.items()} == {k: v.verdict for k, v in second.items()}
    # equal savings: the smaller id wins the one slot
    winner = min(a.id, b.id)
    assert first[winner].verdict == Verdict.ALLOW


def test_node_group_cut_percent_requires_approval():
    decision = decide(node_group_finding(before="4", after="1"), GuardrailSettings(max_single_change_percent=50))
    assert decision.verdict == Verdict.REQUIRE_APPROVAL
    assert "cuts desired_size by 75% (4 -> 1)" in decision.reasons[0].message


def test_settings_from_policy_yaml_shape():
    policy = load_policy({"guardrails": {"protectedLabels": {"env": "prod"}, "protectedAction": "Deny",
                                         "minConfidencePercent": 80}})
    decision = decide(container_finding(confidence=0.85, labels={"env": "prod"}), policy.guardrails)
    assert decision.verdict == Verdict.DENY
    assert rules_of(decision) == ["protected-labels"]


def test_context_requires_aware_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        GuardrailContext(now=datetime(2024, 1, 1, 12, 0))


def test_a_safety_raise_that_only_raises_is_not_denied_for_risk():
    # an OOM bump: the new limit runs close to the old peak (which was the old limit), so its risk score is
    # high, yet leaving the container as it is runs the higher risk
    settings = GuardrailSettings(max_risk_percent=60)
    bump = container_finding(memory=("512Mi", "640Mi"), savings=-3.0, risk=0.7)
    decision = decide(bump, settings)
    assert decision.verdict == Verdict.ALLOW and "max-risk" not in rules_of(decision)
    # a raise that also cuts something, or a cut, still meets the risk maximum
    mixed = container_finding(memory=("512Mi", "640Mi"), savings=-3.0, risk=0.7)
    mixed.changes.append(Change("resources.limits.memory", "1Gi", "700Mi"))
    assert decide(mixed, settings).verdict == Verdict.DENY and "max-risk" in rules_of(decide(mixed, settings))
    cut = container_finding(memory=("640Mi", "512Mi"), savings=3.0, risk=0.7)
    assert decide(cut, settings).verdict == Verdict.DENY
