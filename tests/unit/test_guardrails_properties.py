"""Property tests (hypothesis): the guardrail invariants hold for thousands of generated findings and days.

Without a human approval, no finding is ever ALLOWED when:
- its target carries a protected label,
- it saves or costs more than maxSingleChangeDollars a month (cuts and raises),
- any one of its changes cuts deeper than maxSingleChangePercent, or raises beyond
  the mirror bound 1 / (1 - P/100),
- ``now`` is outside every change window;
and across two or three runs of one day, through the real ledger and the same
context the operator builds (``reconcile.guardrail_context``), the number of
proposals made that day never exceeds maxChangesPerDay.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finops_operator.guardrails import evaluate
from finops_operator.guardrails.rules import change_ratio
from finops_operator.guardrails.windows import inside
from finops_operator.ledger import DONE, Ledger, OpportunityState
from finops_operator.models import Change, Verdict
from finops_operator.reconcile import guardrail_context
from finops_operator.settings import ChangeWindow, GuardrailSettings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fixtures_guardrails import container_finding

DAY = datetime(2024, 6, 12, tzinfo=UTC)          # a Wednesday
PROTECTED = {"tier": "production"}
MILLICORES = st.integers(min_value=1, max_value=16000)
FAST = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def findings(draw, workload: str | None = None):
    """A CPU right-sizing finding: a cut or a raise, sometimes with a second change (a limit) the other way."""
    before, after = draw(MILLICORES), draw(MILLICORES)
    savings = draw(st.floats(min_value=-2000, max_value=2000, allow_nan=False))
    labels = draw(st.sampled_from([{}, {"team": "a"}, PROTECTED, {"tier": "Production"}]))
    finding = container_finding(workload=workload or draw(st.sampled_from("abcdefgh")), savings=savings,
                                cpu=(f"{before}m", f"{after}m"), labels=labels,
                                confidence=draw(st.floats(0.5, 1.0)), risk=draw(st.floats(0.0, 0.5)))
    if draw(st.booleans()):
        finding.changes.append(Change("resources.limits.cpu", f"{draw(MILLICORES)}m", f"{draw(MILLICORES)}m"))
    return finding


@st.composite
def guardrails(draw):
    dollars = draw(st.integers(0, 2500))
    windows = draw(st.sampled_from([[], [ChangeWindow()],
                                    [ChangeWindow(days=[2], start="22:00", end="02:00", time_zone="Europe/Berlin")],
                                    [ChangeWindow(days=[5, 6], start="00:00", end="00:00")]]))
    return GuardrailSettings(
        max_changes_per_day=draw(st.integers(0, 6)), max_single_change_dollars=dollars,
        approval_above_dollars=draw(st.integers(0, 2500)), max_single_change_percent=draw(st.integers(1, 100)),
        protected_labels=PROTECTED, protected_action=draw(st.sampled_from(["Deny", "RequireApproval"])),
        change_windows=windows, min_confidence_percent=50, max_risk_percent=60)


def within_percent(change: Change, limit: int) -> bool:
    ratio = change_ratio(change)
    if ratio is None:
        return True
    if ratio <= 1:
        return (1 - ratio) * 100 <= limit + 1e-9
    return limit >= 100 or ratio <= 1 / (1 - limit / 100) + 1e-9


def assert_allowed_within_limits(finding, verdict, rules: GuardrailSettings, now: datetime) -> None:
    if verdict != Verdict.ALLOW:
        return
    assert finding.labels.get("tier", "").lower() != "production", "a protected target was allowed"
    assert abs(finding.monthly_savings) <= rules.max_single_change_dollars, "over the dollar limit"
    assert all(within_percent(c, rules.max_single_change_percent) for c in finding.changes), "over the percent limit"
    assert not rules.change_windows or any(inside(now, w) for w in rules.change_windows), "outside the change window"


@FAST
@given(batch=st.lists(findings(), min_size=1, max_size=8), rules=guardrails(),
       minute=st.integers(0, 7 * 24 * 60 - 1), changes_today=st.integers(0, 8))
def test_no_allowed_finding_breaks_a_limit(batch, rules, minute, changes_today):
    now = DAY + timedelta(minutes=minute)
    ledger = Ledger()
    context = guardrail_context(ledger, now)
    context.changes_today = changes_today
    decisions = evaluate(batch, rules, context)
    first: dict[str, object] = {}
    for finding in batch:
        first.setdefault(finding.id, finding)                  # a repeated id is decided once, the first wins
    for finding in first.values():
        assert_allowed_within_limits(finding, decisions[finding.id].verdict, rules, now)
    allowed = sum(1 for d in decisions.values() if d.verdict == Verdict.ALLOW)
    assert allowed <= max(0, rules.max_changes_per_day - changes_today)


@st.composite
def days(draw):
    """A pool of findings and 2-3 runs in one day: each run sees a subset, some with new values."""
    pool = [draw(findings(workload=w)) for w in "abcdef"]
    runs = []
    for _ in range(draw(st.integers(2, 3))):
        seen = draw(st.lists(st.sampled_from(pool), max_size=6, unique_by=lambda f: f.id))
        runs.append([draw(findings(workload=f.target.workload.name)) if draw(st.booleans()) else f for f in seen])
    closes = draw(st.lists(st.sampled_from(["close", "merge", "keep"]), min_size=6, max_size=6))
    hours = sorted(draw(st.lists(st.integers(0, 23), min_size=len(runs), max_size=len(runs), unique=True)))
    return runs, closes, hours


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(day=days(), rules=guardrails())
def test_the_daily_limit_holds_across_runs_of_one_day(day, rules):
    """Each run: the operator's context -> guardrails -> ledger; everything allowed is proposed (worst case)."""
    runs, closes, hours = day
    ledger = Ledger()
    for index, (batch, hour) in enumerate(zip(runs, hours)):
        now = DAY + timedelta(hours=hour)
        _humans_act(ledger, closes, index, now)
        decisions = evaluate(batch, rules, guardrail_context(ledger, now))
        ledger.observe(batch, decisions, now)
        for finding in batch:
            assert_allowed_within_limits(finding, decisions[finding.id].verdict, rules, now)
            opp = ledger.get(finding.id)
            if decisions[finding.id].verdict == Verdict.ALLOW and opp.state not in DONE:
                ledger.proposed(finding.id, f"https://pr/{finding.id}", 1, f"finops/{finding.id}", finding.id, now)
        assert ledger.changes_on(DAY.date(), UTC) <= rules.max_changes_per_day


def _humans_act(ledger: Ledger, closes: list[str], index: int, now: datetime) -> None:
    """Between runs, people close or merge some open PRs (the run's sync step sees it)."""
    for i, opp in enumerate(ledger.opportunities):
        if opp.state != OpportunityState.PROPOSED or index == 0:
            continue
        action = closes[(i + index) % len(closes)]
        if action == "close":
            ledger.closed(opp.id, now)
        elif action == "merge":
            ledger.merged(opp.id, now)
