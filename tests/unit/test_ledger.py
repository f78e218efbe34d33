"""The savings ledger: lifecycle, audit trail, reopen rules, verification, totals, persistence."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from finops_operator.guardrails import GuardrailContext, evaluate
from finops_operator.ledger import Ledger, LedgerError, OpportunityState as S, material_change, should_reopen
from finops_operator.models import Decision, Reason, Verdict
from finops_operator.settings import GuardrailSettings
from tests.support.fixtures_guardrails import container_finding, volume_finding

T0 = datetime(2024, 6, 10, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
PR = "https://github.example/acme/gitops/pull/7"


def allow(*findings):
    return {f.id: Decision(f.id, Verdict.ALLOW) for f in findings}


def reopen(ledger, finding):
    """The reopen rule as the guardrails apply it (ledger.rejected() -> should_reopen)."""
    rejected = ledger.rejected().get(finding.id)
    return rejected is not None and should_reopen(rejected, finding.fingerprint, finding.monthly_savings)


def states(opp):
    return [(t.from_state, t.to_state) for t in opp.history]


def test_happy_path_detected_to_verified_with_audit_trail():
    ledger = Ledger()
    finding = container_finding(savings=55.84, cost_before=74.46)
    [opp] = ledger.observe([finding], allow(finding), T0)
    assert opp.state == S.DETECTED and opp.baseline_monthly_cost == 74.46
    ledger.proposed(finding.id, PR, 7, "finops/rightsize-payments", "rightsize-payments", T0 + timedelta(hours=1))
    assert ledger.observe([finding], allow(finding), T0 + DAY) == []          # nothing changed
    ledger.merged(finding.id, T0 + 2 * DAY)
    ledger.merged(finding.id, T0 + 2 * DAY)                                     # polling again is a no-op
    assert ledger.verify(finding.id, 51.0, T0 + 5 * DAY, settle=timedelta(days=7)) is False
    assert ledger.get(finding.id).state == S.MERGED
    assert ledger.verify(finding.id, 51.0, T0 + 9 * DAY, settle=timedelta(days=7)) is True
    opp = ledger.get(finding.id)
    assert opp.state == S.VERIFIED and opp.realized_monthly_savings == 51.0 and opp.verified_at == T0 + 9 * DAY
    assert states(opp) == [(None, "Detected"), ("Detected", "Proposed"), ("Proposed", "Merged"), ("Merged", "Verified")]
    assert [t.reason for t in opp.history] == [
        "detected; allowed by the guardrails",
        f"pull request opened: {PR}",
        f"pull request merged: {PR}",
        "realized $51.00/month vs estimated $55.84/month after settling 7 days",
    ]
    # merged/verified ones are not superseded when the finding disappears
    assert ledger.observe([], {}, T0 + 10 * DAY) == []
    assert ledger.get(finding.id).state == S.VERIFIED


def test_guardrail_verdicts_map_to_states_with_reasons():
    ledger = Ledger()
    denied = container_finding(workload="thin", confidence=0.2)
    big = container_finding(workload="big", savings=300)
    decisions = evaluate([denied, big], GuardrailSettings(), GuardrailContext(now=T0))
    ledger.observe([denied, big], decisions, T0)
    assert ledger.get(denied.id).state == S.BLOCKED
    assert ledger.get(denied.id).history[0].reason.startswith("deny by min-confidence: confidence 20% is below")
    assert ledger.get(big.id).state == S.NEEDS_APPROVAL
    assert ledger.get(big.id).decision["verdict"] == "require-approval"
    # approved next run -> Detected
    decisions = evaluate([denied, big], GuardrailSettings(), GuardrailContext(now=T0 + DAY, approved=frozenset({big.id})))
    [changed] = ledger.observe([big, denied], decisions, T0 + DAY)
    assert changed.id == big.id and changed.state == S.DETECTED
    assert states(changed)[-1] == ("NeedsApproval", "Detected")


def test_rejected_is_not_reopened_unless_material_change():
    ledger = Ledger()
    finding = container_finding(cpu=("1", "250m"), savings=50.0)
    ledger.observe([finding], allow(finding), T0)
    ledger.proposed(finding.id, PR, 7, "finops/rightsize-payments", "rightsize-payments", T0)
    ledger.closed(finding.id, T0 + DAY)
    assert ledger.get(finding.id).state == S.REJECTED
    # the same recommendation: stays rejected, nothing recorded
    assert ledger.observe([finding], allow(finding), T0 + 2 * DAY) == []
    assert reopen(ledger, finding) is False
    # slightly different values, savings within 20%: recorded, still not reopened
    nudged = container_finding(cpu=("1", "260m"), savings=46.0)
    [opp] = ledger.observe([nudged], allow(nudged), T0 + 3 * DAY)
    assert opp.state == S.REJECTED
    assert opp.history[-1].from_state == opp.history[-1].to_state == "Rejected"
    assert opp.history[-1].reason.endswith("savings $50.00 -> $46.00 (not material)")
    assert reopen(ledger, nudged) is False
    with pytest.raises(LedgerError, match="cannot mark merged an opportunity in state Rejected"):
        ledger.merged(finding.id, T0 + 3 * DAY)


def test_reopen_on_material_change_and_direction_change():
    ledger = Ledger()
    finding = container_finding(cpu=("1", "250m"), savings=50.0)
    ledger.observe([finding], allow(finding), T0)
    ledger.proposed(finding.id, PR, 7, "finops/rightsize-payments", "rightsize-payments", T0)
    ledger.closed(finding.id, T0 + DAY)
    deeper = container_finding(cpu=("1", "100m"), savings=70.0)                 # +40%
    assert reopen(ledger, deeper) is True
    raise_ = container_finding(cpu=("1", "1500m"), savings=-20.0)               # direction changed
    assert reopen(ledger, raise_) is True
    same_savings_new_values = container_finding(cpu=("1", "240m"), savings=50.0)
    assert reopen(ledger, same_savings_new_values) is False
    ledger.observe([deeper], allow(deeper), T0 + 2 * DAY)
    opp = ledger.proposed(finding.id, PR + "8", 8, "finops/rightsize-payments", "rightsize-payments", T0 + 2 * DAY)
    assert opp.state == S.PROPOSED and opp.proposed_fingerprint == deeper.fingerprint
    assert opp.history[-1].reason == f"proposed again after a material change: {PR}8"


@pytest.mark.parametrize("old, new, expected", [(50, 60, False), (50, 61, True), (50, 39, True),
                                                (-10, 5, True), (0, 0, False), (None, 1, True)])
def test_material_change_threshold(old, new, expected):
    assert material_change(old, new) is expected


def test_disappeared_findings_are_superseded_and_can_return():
    ledger = Ledger()
    a, b = container_finding(workload="a"), volume_finding("vol-1")
    ledger.observe([a, b], allow(a, b), T0)
    changed = ledger.observe([], {}, T0 + DAY, covered=lambda o: o.detector == "orphan-volumes")
    assert [o.id for o in changed] == [b.id]                                    # only the covered scope
    assert ledger.get(b.id).state == S.SUPERSEDED and ledger.get(a.id).state == S.DETECTED
    ledger.observe([b], allow(b), T0 + 2 * DAY, covered=lambda o: o.detector == "orphan-volumes")
    assert states(ledger.get(b.id))[-1] == ("Superseded", "Detected")
    assert ledger.get(b.id).history[-1].reason.startswith("detected again")


def test_a_proposed_opportunity_is_never_superseded_its_pr_stays_tracked():
    """Issue 7 #19: a vanished finding with an open PR stays Proposed (synced until merged or closed)."""
    ledger = Ledger()
    b = volume_finding("vol-1")
    ledger.observe([b], allow(b), T0)
    ledger.proposed(b.id, PR, 7, "finops/orphan-volumes", "orphan-volumes", T0)
    [opp] = ledger.observe([], {}, T0 + DAY)
    assert opp.state == S.PROPOSED and opp.history[-1].reason.startswith("no longer detected while its pull request")
    assert PR in opp.history[-1].reason and ledger.open_change_sets() == {b.id: "orphan-volumes"}
    assert ledger.observe([], {}, T0 + 2 * DAY) == [], "recorded once, not every run"
    ledger.merged(b.id, T0 + 3 * DAY)
    assert ledger.get(b.id).state == S.MERGED


def test_an_uncovered_detector_supersedes_nothing():
    ledger = Ledger()
    a = container_finding(workload="a")
    ledger.observe([a], allow(a), T0)
    assert ledger.observe([], {}, T0 + DAY, covered=lambda o: False) == []
    assert ledger.get(a.id).state == S.DETECTED


def test_fingerprint_change_on_open_pr_is_recorded_and_pr_updated():
    ledger = Ledger()
    finding = container_finding(cpu=("1", "250m"), savings=50.0)
    ledger.observe([finding], allow(finding), T0)
    ledger.proposed(finding.id, PR, 7, "finops/x", "x", T0)
    newer = container_finding(cpu=("1", "300m"), savings=45.0)
    [opp] = ledger.observe([newer], allow(newer), T0 + DAY)
    assert opp.state == S.PROPOSED and opp.fingerprint == newer.fingerprint
    assert opp.history[-1].reason.startswith(f"recommendation changed: fingerprint {finding.fingerprint} -> ")
    ledger.proposed(finding.id, PR, 7, "finops/x", "x", T0 + DAY)               # force-pushed, body edited
    assert opp.history[-1].reason == f"pull request updated: {PR}" and opp.proposed_fingerprint == newer.fingerprint
    count = len(opp.history)
    ledger.proposed(finding.id, PR, 7, "finops/x", "x", T0 + 2 * DAY)           # nothing new: no entry
    assert len(opp.history) == count


def test_new_recommendation_after_merge_starts_a_new_cycle():
    ledger = Ledger()
    cut = container_finding(memory=("1Gi", "512Mi"), savings=20.0)
    ledger.observe([cut], allow(cut), T0)
    ledger.proposed(cut.id, PR, 7, "finops/x", "x", T0)
    ledger.merged(cut.id, T0 + DAY)
    ledger.verify(cut.id, 18.0, T0 + 9 * DAY, settle=timedelta(days=7))
    oom_raise = container_finding(memory=("512Mi", "768Mi"), savings=-6.0)
    [opp] = ledger.observe([oom_raise], allow(oom_raise), T0 + 10 * DAY)
    assert opp.state == S.DETECTED and opp.pr_url is None and opp.realized_monthly_savings is None
    assert opp.past_cycles[0]["realized_monthly_savings"] == 18.0
    assert ledger.totals()["total"]["realized"] == 18.0


def test_illegal_transitions_raise_clear_errors():
    ledger = Ledger()
    blocked = container_finding(confidence=0.1)
    ledger.observe([blocked], {blocked.id: Decision(blocked.id, Verdict.DENY, [Reason("min-confidence", Verdict.DENY, "x")])}, T0)
    with pytest.raises(LedgerError) as err:
        ledger.proposed(blocked.id, PR, 1, "b", "c", T0)
    assert str(err.value) == (f"ledger: {blocked.id}: Deployment/payments/api/app: cannot propose an opportunity in "
                              "state Blocked (only from Detected, Proposed, Rejected)")
    with pytest.raises(LedgerError, match="cannot verify"):
        ledger.verify(blocked.id, 1.0, T0, settle=DAY)
    with pytest.raises(LedgerError, match="no opportunity with id 'nope'"):
        ledger.closed("nope", T0)


def test_changes_on_and_open_prs_feed_the_guardrails():
    ledger = Ledger()
    berlin = ZoneInfo("Europe/Berlin")
    fs = [container_finding(workload=f"w{i}") for i in range(4)]
    ledger.observe(fs, allow(*fs), T0)
    ledger.proposed(fs[0].id, PR, 7, "finops/a", "a", datetime(2024, 6, 10, 22, 30, tzinfo=timezone.utc))
    ledger.proposed(fs[1].id, PR, 7, "finops/a", "a", datetime(2024, 6, 10, 12, 0, tzinfo=timezone.utc))
    ledger.proposed(fs[2].id, PR + "9", 9, "finops/b", "b", datetime(2024, 6, 11, 8, 0, tzinfo=timezone.utc))
    ledger.proposed(fs[2].id, PR + "9", 9, "finops/b2", "b", datetime(2024, 6, 11, 9, 0, tzinfo=timezone.utc))
    assert ledger.changes_on(date(2024, 6, 10)) == 2
    assert ledger.changes_on(date(2024, 6, 11)) == 1                            # an update is not a new change
    assert ledger.changes_on(date(2024, 6, 11), berlin) == 2                    # 22:30 UTC on the 10th is 00:30 CEST on the 11th
    assert ledger.open_prs() == 2
    assert ledger.open_change_sets() == {fs[0].id: "a", fs[1].id: "a", fs[2].id: "b"}


def test_totals_by_team_type_and_counts():
    ledger = Ledger()
    a = container_finding("payments", "api", savings=50.0, team="payments", cost_before=80.0)
    b = container_finding("search", "idx", savings=30.0, team="search")
    c = volume_finding("vol-1", savings=8.0)
    d = container_finding("search", "old", savings=5.0, team="search")
    ledger.observe([a, b, c, d], allow(a, b, c, d), T0)
    ledger.proposed(a.id, PR, 7, "finops/a", "a", T0)
    ledger.merged(a.id, T0)
    ledger.verify(a.id, 44.5, T0 + 8 * DAY, settle=timedelta(days=7))
    ledger.proposed(d.id, PR, 8, "finops/d", "d", T0)
    ledger.closed(d.id, T0)
    totals = ledger.totals(by="team")
    assert totals["total"]["estimated"] == 88.0                                 # rejected one excluded
    assert totals["total"]["estimated_verified"] == 50.0 and totals["total"]["realized"] == 44.5
    assert totals["total"]["counts"]["Verified"] == 1 and totals["total"]["counts"]["Rejected"] == 1
    assert totals["total"]["counts"]["Detected"] == 2 and totals["total"]["baseline"] == 80.0
    assert sorted(totals["groups"]) == ["payments", "platform", "search"]
    assert totals["groups"]["search"]["estimated_open"] == 30.0
    assert totals["groups"]["payments"]["realized"] == 44.5
    by_type = ledger.totals(by="type")["groups"]
    assert by_type["orphan-volume"]["estimated"] == 8.0 and by_type["rightsize-cpu"]["opportunities"] == 3
    with pytest.raises(LedgerError, match="cannot group totals by 'colour'"):
        ledger.totals(by="colour")


def test_every_proposal_of_the_day_counts_and_open_ones_are_known_as_updates():
    ledger = Ledger()
    fs = [container_finding(workload=f"w{i}") for i in range(3)]
    ledger.observe(fs, allow(*fs), T0)
    at = datetime(2024, 6, 10, 9, 0, tzinfo=timezone.utc)
    ledger.proposed(fs[0].id, PR, 7, "finops/a", "a", at)                    # then merged: still a change today
    ledger.merged(fs[0].id, at + timedelta(hours=1))
    ledger.proposed(fs[1].id, PR, 7, "finops/a", "a", at)                    # still open: found again by the run
    ledger.proposed(fs[2].id, PR + "9", 9, "finops/b", "b", at)              # closed, then proposed again today
    ledger.closed(fs[2].id, at + timedelta(hours=1))
    ledger.proposed(fs[2].id, PR + "10", 10, "finops/b", "b", at + timedelta(hours=2))
    assert ledger.changes_on(date(2024, 6, 10)) == 4
    assert ledger.proposed_ids() == {fs[1].id, fs[2].id}                      # the next run updates their PRs
