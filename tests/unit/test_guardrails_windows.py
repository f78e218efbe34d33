"""Change windows: named time zones, midnight crossing, DST gap and overlap (zoneinfo)."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from finops_operator.guardrails import GuardrailContext, evaluate
from finops_operator.guardrails.windows import inside, next_opening
from finops_operator.models import Verdict
from finops_operator.settings import ChangeWindow, GuardrailSettings
from tests.support.fixtures_guardrails import container_finding

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


def window_reason(now: datetime, *windows: ChangeWindow):
    finding = container_finding()
    decision = evaluate([finding], GuardrailSettings(change_windows=list(windows)), GuardrailContext(now=now))[finding.id]
    [reason] = [r for r in decision.reasons if r.rule == "change-window"]
    return decision.verdict, reason.message


def test_no_windows_means_any_time():
    finding = container_finding()
    decision = evaluate([finding], GuardrailSettings(), GuardrailContext(now=datetime(2024, 6, 16, 3, tzinfo=UTC)))
    assert decision[finding.id].verdict == Verdict.ALLOW
    assert decision[finding.id].reasons == []


def test_inside_business_hours_in_named_zone():
    window = ChangeWindow(days=[0, 1, 2, 3, 4], start="09:00", end="17:00", time_zone="Europe/Berlin")
    # 07:30 UTC in June is 09:30 CEST
    verdict, message = window_reason(datetime(2024, 6, 12, 7, 30, tzinfo=UTC), window)
    assert verdict == Verdict.ALLOW
    assert message == "inside change window Mon,Tue,Wed,Thu,Fri 09:00-17:00 Europe/Berlin"
    # 06:30 UTC is 08:30 CEST: outside, opens the same morning at 09:00 local
    verdict, message = window_reason(datetime(2024, 6, 12, 6, 30, tzinfo=UTC), window)
    assert verdict == Verdict.DENY
    assert message == "outside change window; next window opens Wed 2024-06-12 09:00 CEST (Europe/Berlin)"


def test_friday_evening_rolls_to_monday():
    window = ChangeWindow(days=[0, 1, 2, 3, 4], start="09:00", end="17:00", time_zone="America/New_York")
    verdict, message = window_reason(datetime(2024, 6, 14, 18, 0, tzinfo=NY), window)
    assert verdict == Verdict.DENY
    assert message.endswith("next window opens Mon 2024-06-17 09:00 EDT (America/New_York)")


def test_window_crossing_midnight_belongs_to_its_start_day():
    # Friday 22:00 -> Saturday 02:00 Berlin; Saturday is not listed but its early hours are inside.
    window = ChangeWindow(days=[4], start="22:00", end="02:00", time_zone="Europe/Berlin")
    assert inside(datetime(2024, 6, 14, 23, 0, tzinfo=BERLIN), window)      # Fri 23:00
    assert inside(datetime(2024, 6, 15, 1, 59, tzinfo=BERLIN), window)      # Sat 01:59
    assert not inside(datetime(2024, 6, 15, 2, 0, tzinfo=BERLIN), window)   # Sat 02:00: end is exclusive
    assert not inside(datetime(2024, 6, 14, 1, 0, tzinfo=BERLIN), window)   # Fri 01:00 belongs to Thursday
    assert not inside(datetime(2024, 6, 15, 23, 0, tzinfo=BERLIN), window)  # Sat 23:00
    verdict, message = window_reason(datetime(2024, 6, 15, 3, 0, tzinfo=BERLIN), window)
    assert verdict == Verdict.DENY
    assert message.endswith("next window opens Fri 2024-06-21 22:00 CEST (Europe/Berlin)")


def test_equal_start_and_end_is_a_full_day_and_24_00_is_end_of_day():
    full = ChangeWindow(days=[2], start="06:00", end="06:00", time_zone="UTC")
    assert inside(datetime(2024, 6, 13, 5, 59, tzinfo=UTC), full)          # Thu 05:59 still Wednesday's window
    assert not inside(datetime(2024, 6, 13, 6, 0, tzinfo=UTC), full)
    late = ChangeWindow(days=[2], start="20:00", end="24:00", time_zone="UTC")
    assert inside(datetime(2024, 6, 12, 23, 59, tzinfo=UTC), late)
    assert not inside(datetime(2024, 6, 13, 0, 0, tzinfo=UTC), late)


def test_spring_forward_gap_shortens_the_window():
    # America/New_York 2024-03-10: clocks jump 02:00 EST -> 03:00 EDT (a Sunday).
    window = ChangeWindow(days=[6], start="01:00", end="04:00", time_zone="America/New_York")
    opens = datetime(2024, 3, 10, 6, 0, tzinfo=UTC)    # 01:00 EST
    closes = datetime(2024, 3, 10, 8, 0, tzinfo=UTC)   # 04:00 EDT: only two real hours later
    assert inside(opens, window)
    assert inside(datetime(2024, 3, 10, 7, 59, tzinfo=UTC), window)
    assert not inside(closes, window)


def test_start_inside_the_gap_opens_at_the_transition():
    window = ChangeWindow(days=[6], start="02:30", end="03:30", time_zone="America/New_York")
    before = datetime(2024, 3, 10, 1, 30, tzinfo=NY)
    hit = next_opening(before, [window])
    assert hit is not None
    assert hit.at.astimezone(UTC) == datetime(2024, 3, 10, 7, 0, tzinfo=UTC)     # 03:00 EDT, the transition
    verdict, message = window_reason(before, window)
    assert verdict == Verdict.DENY
    assert message.endswith("next window opens Sun 2024-03-10 03:00 EDT (America/New_York)")
    assert inside(datetime(2024, 3, 10, 7, 15, tzinfo=UTC), window)             # 03:15 EDT


def test_window_wholly_inside_the_gap_does_not_open_that_day():
    window = ChangeWindow(days=[6], start="02:00", end="03:00", time_zone="America/New_York")
    hit = next_opening(datetime(2024, 3, 10, 0, 30, tzinfo=NY), [window])
    assert hit is not None
    assert (hit.at.year, hit.at.month, hit.at.day, hit.at.hour) == (2024, 3, 17, 2)


def test_fall_back_overlap_counts_both_occurrences():
    # America/New_York 2024-11-03: 02:00 EDT -> 01:00 EST, so 01:00-02:00 happens twice.
    window = ChangeWindow(days=[6], start="01:00", end="01:30", time_zone="America/New_York")
    first = datetime(2024, 11, 3, 5, 15, tzinfo=UTC)    # 01:15 EDT
    between = datetime(2024, 11, 3, 5, 45, tzinfo=UTC)  # 01:45 EDT
    second = datetime(2024, 11, 3, 6, 15, tzinfo=UTC)   # 01:15 EST
    assert inside(first, window)
    assert not inside(between, window)
    assert inside(second, window)
    verdict, message = window_reason(between, window)
    assert verdict == Verdict.DENY
    assert message.endswith("next window opens Sun 2024-11-03 01:00 EST (America/New_York)")


def test_berlin_dst_dates_keep_local_wall_clock():
    # Europe/Berlin: 2024-03-31 02:00 CET -> 03:00 CEST; 2024-10-27 03:00 CEST -> 02:00 CET.
    window = ChangeWindow(days=[6], start="09:00", end="10:00", time_zone="Europe/Berlin")
    assert inside(datetime(2024, 3, 31, 7, 30, tzinfo=UTC), window)       # 09:30 CEST
    assert not inside(datetime(2024, 3, 31, 8, 30, tzinfo=UTC), window)   # 10:30 CEST
    assert inside(datetime(2024, 10, 27, 8, 30, tzinfo=UTC), window)      # 09:30 CET
    overlap = ChangeWindow(days=[6], start="02:00", end="03:00", time_zone="Europe/Berlin")
    assert inside(datetime(2024, 10, 27, 0, 30, tzinfo=UTC), overlap)     # 02:30 CEST
    assert inside(datetime(2024, 10, 27, 1, 30, tzinfo=UTC), overlap)     # 02:30 CET
    assert not inside(datetime(2024, 10, 27, 2, 0, tzinfo=UTC), overlap)  # 03:00 CET


def test_earliest_of_several_windows_is_reported():
    a = ChangeWindow(days=[0], start="09:00", end="10:00", time_zone="America/New_York")
    b = ChangeWindow(days=[6], start="20:00", end="21:00", time_zone="Europe/Berlin")
    now = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)   # Saturday
    hit = next_opening(now, [a, b])
    assert hit.window == b
    assert hit.at.astimezone(UTC) == datetime(2024, 6, 16, 18, 0, tzinfo=UTC)


def test_window_with_no_days_never_opens():
    window = ChangeWindow(days=[], start="09:00", end="17:00")
    verdict, message = window_reason(datetime(2024, 6, 12, 10, 0, tzinfo=UTC), window)
    assert verdict == Verdict.DENY
    assert "no window ever opens" in message


def test_safety_raise_still_respects_windows():
    window = ChangeWindow(days=[0], start="09:00", end="10:00", time_zone="UTC")
    raise_ = container_finding(memory=("256Mi", "512Mi"), savings=-40)
    decision = evaluate([raise_], GuardrailSettings(change_windows=[window]),
                        GuardrailContext(now=datetime(2024, 6, 12, 10, tzinfo=UTC)))[raise_.id]
    assert decision.verdict == Verdict.DENY


def test_unknown_zone_rejected_by_settings():
    with pytest.raises(ValueError, match="unknown time zone"):
        ChangeWindow(time_zone="Mars/Olympus")
