"""Budget evaluation (pure): periods in a time zone, state, thresholds once per period, events, history."""
from __future__ import annotations

import gzip
import json
import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from finops_operator.api.budget import read_budget
from finops_operator.api.budgetstatus import evaluated_status, memory_from_status
from finops_operator.budgets import (MAX_EVENTS, BudgetRules, Memory, State, ThresholdRule, day_bounds, evaluate,
                                     forecaster_for, moving_average, period_of, utc_bounds)
from finops_operator.budgets.history import MAX_DAYS, SpendHistory, decode, encode, first_open_day, merge
from finops_operator.errors import ConfigError
from finops_operator.models.spend import Anomaly, AnomalyKind, Severity, SpendSeries

BERLIN = ZoneInfo("Europe/Berlin")


def rules(amount=1000.0, *thresholds, period="Monthly", zone="UTC", anchor=None):
    return BudgetRules(amount, period, tuple(thresholds) or (ThresholdRule(80, "Notify"), ThresholdRule(100, "Alert")),
                       time_zone=zone, anchor=anchor)


def flat(start: date, days: int, cost: float) -> SpendSeries:
    return SpendSeries(start, np.full(days, cost))


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize("day, kind, anchor, start, end", [
    (date(2026, 3, 10), "Monthly", None, date(2026, 3, 1), date(2026, 4, 1)),
    (date(2026, 5, 31), "Quarterly", None, date(2026, 4, 1), date(2026, 7, 1)),
    (date(2026, 12, 31), "Yearly", None, date(2026, 1, 1), date(2027, 1, 1)),
    # fiscal year from April; the day before the anchor's day belongs to the previous year
    (date(2026, 3, 31), "Yearly", date(2025, 4, 1), date(2025, 4, 1), date(2026, 4, 1)),
    (date(2026, 4, 1), "Yearly", date(2019, 4, 1), date(2026, 4, 1), date(2027, 4, 1)),
    (date(2026, 2, 1), "Quarterly", date(2025, 4, 1), date(2026, 1, 1), date(2026, 4, 1)),
    # monthly from the 15th, before the anchor too
    (date(2026, 3, 14), "Monthly", date(2026, 6, 15), date(2026, 2, 15), date(2026, 3, 15)),
    (date(2026, 3, 15), "Monthly", date(2026, 6, 15), date(2026, 3, 15), date(2026, 4, 15)),
])
def test_periods(day, kind, anchor, start, end):
    period = period_of(day, kind, anchor)
    assert (period.start, period.end) == (start, end)
    assert period.key == f"{start.isoformat()}/{kind}"


def test_a_day_across_dst_is_23_or_25_hours_and_periods_start_at_local_midnight():
    spring = day_bounds(date(2026, 3, 29), BERLIN)
    autumn = day_bounds(date(2026, 10, 25), BERLIN)
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    start, end = utc_bounds(period_of(date(2026, 4, 2), "Monthly"), BERLIN)
    assert start == datetime(2026, 3, 31, 22, tzinfo=UTC)          # CEST: UTC+2
    assert end == datetime(2026, 4, 30, 22, tzinfo=UTC)
    winter = utc_bounds(period_of(date(2026, 1, 2), "Monthly"), BERLIN)
    assert winter[0] == datetime(2025, 12, 31, 23, tzinfo=UTC)      # CET: UTC+1


def test_the_period_is_the_budgets_local_day_not_utcs():
    # 23:30 UTC on 31 March is already 1 April in Berlin: a new monthly period there, not in UTC
    now = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    assert rules(zone="Europe/Berlin").period_at(now).start == date(2026, 4, 1)
    assert rules(zone="UTC").period_at(now).start == date(2026, 3, 1)


# --------------------------------------------------------------------------- evaluation


NOW = datetime(2026, 3, 16, 12, tzinfo=UTC)            # day 16 of a 31-day month


def run(history, memory=Memory(), now=NOW, r=None, **kw):
    return evaluate(r or rules(), history, now=now, memory=memory, forecaster=moving_average, **kw)


def test_spend_forecast_and_interval_on_a_known_series():
    history = flat(date(2026, 1, 1), 75, 20.0)           # Jan 1 .. Mar 16 (today partial: 20 so far)
    result = run(history)
    assert result.spend == pytest.approx(16 * 20.0)
    assert result.forecast == pytest.approx(31 * 20.0)   # flat: 20 a day for the rest of the month
    assert result.lower <= result.forecast <= result.upper
    assert result.method == "moving-average" and result.mape == pytest.approx(0.0)
    assert result.state is State.OK and result.crossings == []


@pytest.mark.parametrize("daily, state", [(20.0, State.OK), (27.0, State.WARNING), (33.0, State.FORECAST_EXCEEDED),
                                          (70.0, State.EXCEEDED)])
def test_states(daily, state):
    # 27 x 31 = 837 forecast (no actual crossing yet: 27 x 16 = 432), but a forecasted 80% threshold is
    r = rules(1000.0, ThresholdRule(80, "Notify", forecasted=True), ThresholdRule(100, "Alert"))
    assert run(flat(date(2026, 1, 1), 75, daily), r=r).state is state


def test_forecasted_thresholds_wait_for_a_week_of_history():
    r = rules(1000.0, ThresholdRule(100, "Alert", forecasted=True))
    young = run(flat(date(2026, 3, 13), 4, 60.0), r=r)   # 3 complete days: a forecast of 1,860 is not trusted
    assert young.crossings == [] and young.state is State.OK
    grown = run(flat(date(2026, 3, 1), 16, 60.0), r=r)
    assert [c.threshold.id for c in grown.crossings] == ["100-forecast"] and grown.state is State.FORECAST_EXCEEDED


def test_a_threshold_fires_once_per_period_not_after_a_dip_and_return_and_again_after_roll_over():
    r = rules(1000.0, ThresholdRule(50, "Notify"), ThresholdRule(100, "Alert"))
    history = flat(date(2026, 3, 1), 16, 40.0)          # 640 by the 16th
    first = run(history, r=r)
    assert [c.threshold.id for c in first.crossings] == ["50"]
    again = run(history, memory=first.memory, r=r, now=NOW + timedelta(minutes=15))
    assert again.crossings == []
    dipped = SpendSeries(history.start, history.values.copy())
    dipped.values[:] = 10.0                             # a correction: spend back under the line
    low = run(dipped, memory=again.memory, r=r)
    assert low.crossings == [] and low.state is State.OK
    back = run(history, memory=low.memory, r=r)
    assert back.crossings == []                         # crossed again in the same period: nothing fires
    april = run(flat(date(2026, 4, 1), 16, 40.0), memory=back.memory, r=r, now=NOW + timedelta(days=31))
    assert april.period.key == "2026-04-01/Monthly" and [c.threshold.id for c in april.crossings] == ["50"]


def test_two_thresholds_crossed_at_once_fire_together_with_one_event_each():
    result = run(flat(date(2026, 3, 1), 16, 70.0))      # 1,120 of 1,000
    assert [c.threshold.id for c in result.crossings] == ["80", "100"]
    assert [e.kind.value for e in result.memory.events] == ["ThresholdCrossed", "ThresholdCrossed"]


def test_events_are_bounded_and_anomalies_reported_once():
    anomalies = [Anomaly(date(2026, 3, d), date(2026, 3, d), Severity.HIGH, AnomalyKind.SPIKE, 10.0, 30.0,
                         driver="namespace shop") for d in range(1, 16)]
    memory = Memory()
    for step in range(3):
        result = run(flat(date(2026, 3, 1), 16, 1.0), memory=memory, anomalies=anomalies,
                     now=NOW + timedelta(hours=step))
        memory = result.memory
    assert len(memory.events) == min(MAX_EVENTS, 15)
    assert sum(1 for e in memory.events if e.kind.value == "AnomalyFound") == 15      # once each, not 3 times
    assert "high spike 2026-03-15: 30.00 USD against 10.00 USD expected; driver namespace shop" in \
        memory.events[-1].message
    many = [Anomaly(date(2026, 3, 1) + timedelta(days=i % 16), date(2026, 3, 1), Severity.LOW, AnomalyKind.DIP,
                    1, 0) for i in range(40)]
    assert len(run(None, anomalies=many).memory.events) <= MAX_EVENTS


def test_no_history_is_zero_spend_and_no_forecast():
    result = run(None)
    assert (result.spend, result.forecast, result.method, result.state) == (0.0, 0.0, "none", State.OK)


def test_the_default_forecaster_is_usable_whatever_part_1_provides():
    fc = forecaster_for("HoltWinters")(flat(date(2026, 1, 1), 30, 5.0), 3)
    assert len(fc.points) == 3 and fc.points[0].day == date(2026, 1, 31)


# --------------------------------------------------------------------------- status round trip


def budget(**spec):
    return read_budget({"metadata": {"name": "b", "namespace": "team", "uid": "u1", "generation": 2},
                        "spec": {"amount": "1000", **spec}})


def test_status_round_trip_keeps_what_fired_so_a_restart_fires_nothing_twice():
    b = budget()
    first = evaluate(b.rules(), flat(date(2026, 3, 1), 16, 70.0), now=NOW, memory=Memory(), forecaster=moving_average)
    status = json.loads(json.dumps(evaluated_status(b, first, None, now=NOW)))
    assert status["state"] == "Exceeded" and status["usedPercent"] == 112 and status["currentSpend"] == "1120.00"
    assert [t["percent"] for t in status["triggeredThresholds"]] == [80, 100]
    assert status["period"] == "2026-03-01/Monthly" and status["periodStart"] == "2026-03-01T00:00:00Z"
    restarted = evaluate(b.rules(), flat(date(2026, 3, 1), 16, 70.0), now=NOW + timedelta(hours=1),
                         memory=memory_from_status(status), forecaster=moving_average)
    assert restarted.crossings == [] and len(restarted.memory.events) == 2


def test_a_short_history_names_the_method_in_status_and_why_in_the_message():
    b = budget()
    result = evaluate(b.rules(), flat(date(2026, 3, 14), 3, 70.0), now=NOW, memory=Memory(),
                      forecaster=forecaster_for("Auto"))
    assert "fewer than 14" in result.method                        # the forecaster says why it fell back
    status = evaluated_status(b, result, None, now=NOW)
    assert status["forecastMethod"] == "moving-average"            # the CRD allows 32 characters
    assert "fewer than 14" in status["conditions"][0]["message"]


def test_a_freeze_is_remembered_across_periods_and_released_only_later_and_under_its_line():
    from finops_operator.api.budgetrun import due_releases
    from finops_operator.budgets import record_actions
    b = budget(scope={"namespaces": ["shop"]}, thresholds=[{"percent": 100, "action": "FreezeGrowth"}])
    march = evaluate(b.rules(), flat(date(2026, 3, 1), 16, 70.0), now=NOW, memory=Memory(), forecaster=moving_average)
    memory = record_actions(march.memory, [(c, "opened PR #3") for c in march.crossings], now=NOW)
    [freeze] = memory.freezes
    assert (freeze.threshold, freeze.period, freeze.percent, freeze.forecasted) == ("100", "2026-03-01/Monthly",
                                                                                     100, False)
    status = json.loads(json.dumps(evaluated_status(b, replace(march, memory=memory), None, now=NOW)))
    assert status["freezes"] == [{"threshold": "100", "period": "2026-03-01/Monthly", "since": "2026-03-16T12:00:00Z"}]
    restored = memory_from_status(status)
    assert restored.freezes == memory.freezes
    assert due_releases(restored, march, 1000.0) == []                          # the same period: never
    april = evaluate(b.rules(), flat(date(2026, 4, 1), 3, 20.0), now=datetime(2026, 4, 3, 12, tzinfo=UTC),
                     memory=restored, forecaster=moving_average)
    assert april.memory.freezes == restored.freezes                             # a new period keeps it
    assert due_releases(april.memory, april, 1000.0) == [freeze]
    assert due_releases(april.memory, april, 50.0) == []                        # still over the line: kept
    assert april.memory.released("100").freezes == ()
    assert memory_from_status({"freezes": [{"threshold": "x; rm", "period": "p", "since": "2026-03-01T00:00:00Z"},
                                           {"threshold": "100", "period": 3}, None]}).freezes == ()


def test_the_status_names_the_forecast_method_within_its_schema_bound():
    from finops_operator.api.budgetstatus import method_name
    assert method_name("moving-average (history of 7 days, fewer than 14)") == "moving-average"
    assert method_name("holt-winters") == "holt-winters" and len(method_name("x" * 80)) == 32


def test_unreadable_status_memory_is_skipped_not_fatal():
    memory = memory_from_status({"period": "2026-03-01/Monthly", "triggeredThresholds": [{"percent": "x"}, 3],
                                 "events": [{"time": "yesterday", "type": "ThresholdCrossed"}, None]})
    assert memory.fired == {} and memory.events == ()


# --------------------------------------------------------------------------- spec


@pytest.mark.parametrize("spec, field, text", [
    ({"currency": "EUR"}, "spec.currency", "only USD is supported until other currencies are"),
    ({"startDate": "2026-02-30"}, "spec.startDate", "day from 01 to 28"),
    ({"startDate": "2026-04-01T00:00:00Z"}, "spec.startDate", "at most 10 characters"),
    ({"timeZone": "Mars/Olympus"}, "spec.timeZone", "unknown time zone"),
    ({"forecast": {"method": "Prophet"}}, "spec.forecast.method", ""),
    ({"scope": {"teams": ["x" * 64]}}, "spec.scope.teams[0]", ""),
])
def test_spec_rejects(spec, field, text):
    with pytest.raises(ConfigError) as err:
        budget(**spec)
    assert err.value.field == field and text in err.value.message


def test_spec_accepts_fiscal_periods_zones_teams_and_a_policy_ref():
    b = budget(period="Yearly", startDate="2025-04-01", timeZone="America/New_York",
               scope={"teams": ["payments"], "namespaces": ["pay"]}, forecast={"method": "Linear"},
               policyRef={"name": "main"}, thresholds=[{"percent": 90, "action": "Alert", "forecasted": True}])
    r = b.rules()
    assert (r.anchor, r.time_zone, r.period) == (date(2025, 4, 1), "America/New_York", "Yearly")
    assert b.schema.scope.cluster().teams == frozenset({"payments"})
    assert budget(scope={"aws": {"services": ["Amazon Relational Database Service"]}}).schema.scope.cluster() is None


# --------------------------------------------------------------------------- stored history


def test_history_encodes_and_decodes_with_gaps():
    series = SpendSeries(date(2026, 1, 1), np.array([1.5, np.nan, 3.25]))
    back = decode(encode(SpendHistory(series, "Europe/Berlin", date(2026, 1, 3))))
    assert back.time_zone == "Europe/Berlin" and back.complete == date(2026, 1, 3)
    assert back.series.start == date(2026, 1, 1) and math.isnan(back.series.values[1])
    assert back.series.values[0] == 1.5 and back.series.values[2] == 3.25


def test_history_keeps_at_most_400_days_and_none_in_the_future():
    today = date(2026, 6, 1)
    days = {today - timedelta(days=i): 1.0 for i in range(-3, 500)}
    merged = merge(SpendHistory(None, "UTC"), days, today, complete=today)
    assert len(merged.series.values) == MAX_DAYS and merged.series.end == today + timedelta(days=1)
    assert len(encode(merged)) < 8 * 1024


def test_new_days_win_and_only_open_or_unrecorded_days_are_read_again():
    old = merge(SpendHistory(None, "UTC"), {date(2026, 3, d): 1.0 for d in range(1, 11)}, date(2026, 3, 10),
                complete=date(2026, 3, 10))
    assert old.missing(date(2026, 2, 27), date(2026, 3, 11)) == [date(2026, 2, 27), date(2026, 2, 28),
                                                                 date(2026, 3, 10), date(2026, 3, 11)]
    new = merge(old, {date(2026, 3, 10): 5.0}, date(2026, 3, 11), complete=date(2026, 3, 11))
    assert new.series.total(date(2026, 3, 10), date(2026, 3, 11)) == 5.0 and new.series.total() == 14.0


def test_a_day_is_final_two_hours_after_its_local_end():
    assert first_open_day(datetime(2026, 3, 16, 0, 30, tzinfo=UTC), ZoneInfo("UTC")) == date(2026, 3, 15)
    assert first_open_day(datetime(2026, 3, 16, 2, 30, tzinfo=UTC), ZoneInfo("UTC")) == date(2026, 3, 16)


@pytest.mark.parametrize("blob, text", [
    (b"not gzip", "not gzip"),
    (gzip.compress(b"{"), "not JSON"),
    (gzip.compress(json.dumps({"version": 2}).encode()), "version-1"),
    (gzip.compress(json.dumps({"version": 1, "timeZone": "UTC", "start": "2026-01-01",
                               "values": [1.0, -5]}).encode()), "values[1]"),
    (gzip.compress(json.dumps({"version": 1, "timeZone": "UTC", "start": "2026-01-01",
                               "values": [1.0] * 401}).encode()), "at most 400"),
    (gzip.compress(b" " * 300_000), "uncompressed"),
    (gzip.compress(json.dumps({"version": 1, "timeZone": "UTC", "start": "Monday",
                               "values": [1.0]}).encode()), "start must be a date"),
])
def test_bad_stored_history_is_a_value_error_saying_what(blob, text):
    with pytest.raises(ValueError, match=text.replace("[", r"\[").replace("]", r"\]")):
        decode(blob)


def test_the_budget_run_finds_anomalies_in_the_stored_history_and_honours_acknowledgements():
    import numpy as np

    from finops_operator.api.budgetrun import acknowledged_days, find_anomalies
    from finops_operator.models.spend import SpendSeries
    values = np.full(60, 100.0) + np.tile([0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5], 9)[:60]
    values[45] = 400.0                                                   # one spike
    series = SpendSeries(date(2026, 1, 1), values)
    found = find_anomalies(series)
    assert [a.start for a in found] == [date(2026, 2, 15)] and found[0].severity.value == "high"
    acknowledged, problem = acknowledged_days({"finops.dev/acknowledge-anomalies": "2026-02-15"})
    assert problem is None and find_anomalies(series, acknowledged) == []
    assert find_anomalies(SpendSeries(date(2026, 1, 1), values[:10])) == []          # too short to judge
    days, problem = acknowledged_days({"finops.dev/acknowledge-anomalies": "yesterday"})
    assert days == frozenset() and "YYYY-MM-DD" in problem


# --------------------------------------------------------------------------- critical anomalies -> delivery


def _episode(day: int, severity=Severity.HIGH, driver="namespace shop"):
    return Anomaly(date(2026, 3, day), date(2026, 3, day), severity, AnomalyKind.SPIKE, 10.0, 30.0, driver=driver)


def test_the_evaluation_names_the_episodes_it_reports_for_the_first_time_only():
    episodes = [_episode(3), _episode(9, Severity.LOW)]
    first = run(flat(date(2026, 3, 1), 16, 1.0), anomalies=episodes)
    assert [a.start.day for a in first.anomalies_found] == [3, 9]
    again = run(flat(date(2026, 3, 1), 16, 1.0), memory=first.memory, anomalies=episodes,
                now=NOW + timedelta(hours=1))
    assert again.anomalies_found == ()


def test_a_high_episode_is_a_critical_anomaly_insight_for_engineer_and_finance_with_one_stable_id():
    from finops_operator.api.notifycluster import anomaly_insights
    from finops_operator.models.insights import Category, Persona, Priority
    made = anomaly_insights("shop/monthly", [_episode(3), _episode(9, Severity.MEDIUM), _episode(11, Severity.LOW)],
                            NOW)
    assert [i.persona for i in made] == [Persona.ENGINEER, Persona.FINANCE]       # only the HIGH one
    assert {i.id for i in made} == {"anomaly:shop/monthly:2026-03-03"}
    assert all(i.priority is Priority.CRITICAL and i.category is Category.ANOMALY for i in made)
    assert "high spike 2026-03-03: 30.00 USD against 10.00 USD expected" in made[0].description
    assert "namespace shop" in made[0].description and "acknowledge-anomalies" in made[0].recommendation
    assert [(e.kind, e.name) for e in made[0].evidence] == [("Budget", "shop/monthly")]
    later = anomaly_insights("shop/monthly", [_episode(3)], NOW + timedelta(days=2))
    assert [i.id for i in later] == [i.id for i in made]                           # stable across runs


def test_both_personas_subscribed_to_one_channel_get_the_episode_once_and_once_only():
    from finops_operator.api.notifycluster import anomaly_insights
    from finops_operator.delivery import engine
    from finops_operator.delivery.model import QueueState, Route, Subscription
    from finops_operator.models.insights import Persona, Priority
    subs = [Subscription("shop/eng", Persona.ENGINEER, (Route("slack", Priority.HIGH),)),
            Subscription("shop/fin", Persona.FINANCE, (Route("slack", Priority.CRITICAL), Route("mail")))]
    items, dropped = engine.route(anomaly_insights("shop/monthly", [_episode(3)], NOW), subs, NOW)
    assert dropped == [] and sorted((i.channel, i.subscription) for i in items) == [
        ("mail", "shop/fin"), ("slack", "shop/eng"), ("slack", "shop/fin")]
    state, _ = engine.enqueue(QueueState("slack"), items, NOW)
    state, decisions = engine.enqueue(state, items, NOW)                          # queued again: duplicates
    assert len(state.pending) == 1 and {d.outcome.value for d in decisions} == {"Duplicate"}


def test_a_delivery_problem_never_fails_the_evaluation():
    from finops_operator.api.budgetrun import BudgetOutcome, _notify_anomalies
    budget = read_budget({"apiVersion": "finops.dev/v1alpha1", "kind": "Budget",
                          "metadata": {"name": "monthly", "namespace": "shop"},
                          "spec": {"amount": "1000", "period": "Monthly"}})
    result = run(flat(date(2026, 3, 1), 16, 1.0), anomalies=[_episode(3)])
    calls = []

    def broken(namespace, insights):
        calls.append((namespace, [i.persona.value for i in insights]))
        raise RuntimeError("channel slack: https://hooks.example/services/T000/B000/XXXX refused")
    _notify_anomalies(BudgetOutcome(budget, {}, result), broken, NOW)           # logged, not raised
    assert calls == [("shop", ["engineer", "finance"])]
    quiet = run(flat(date(2026, 3, 1), 16, 1.0), anomalies=[_episode(3, Severity.MEDIUM)])
    _notify_anomalies(BudgetOutcome(budget, {}, quiet), broken, NOW)             # nothing HIGH: nothing queued
    assert len(calls) == 1
