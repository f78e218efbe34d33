"""Anomaly detection on known series: what must alarm (and how badly), and what must not."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
from finops_operator.anomalies import HourlySeries, detect
from finops_operator.models.spend import AnomalyKind, Severity, SpendSeries

START = date(2026, 1, 5)                  # a Monday


def daily(days: int = 180, *, level: float = 1000.0, noise: float = 0.03, weekend: float = 0.6,
          month_end: float = 1.0, growth: float = 0.0, seed: int = 0, start: date = START) -> np.ndarray:
    """A weekly series (weekends at ``weekend`` x), month-end days (last two) at ``month_end`` x."""
    rng = np.random.default_rng(seed)
    out = np.empty(days)
    for i in range(days):
        day = start + timedelta(days=i)
        last = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        factor = (weekend if day.weekday() >= 5 else 1.0) * (month_end if (last - day).days < 2 else 1.0)
        out[i] = level * np.exp(growth * i) * factor * (1 + rng.normal(0, noise))
    return out


def series(values: np.ndarray) -> SpendSeries:
    return SpendSeries(START, values)


def day(i: int) -> date:
    return START + timedelta(days=i)


@pytest.mark.parametrize("deviation, band", [(0.09, None), (0.11, Severity.LOW), (0.25, Severity.LOW),
                                             (0.26, Severity.MEDIUM), (0.5, Severity.MEDIUM),
                                             (0.51, Severity.HIGH), (3.0, Severity.HIGH)])
def test_finops_bands(deviation, band):
    assert Severity.for_deviation(deviation) is band


def test_weekly_patterns_do_not_alarm():
    alarms = [len(detect(series(daily(seed=seed)))) for seed in range(10)]
    assert sum(alarms) <= 2, alarms       # 1,800 days of 3% noise: a 3-sigma draw may alarm once or twice


@pytest.mark.parametrize("factor, severity, kind", [(1.8, Severity.HIGH, AnomalyKind.SPIKE),
                                                    (1.35, Severity.MEDIUM, AnomalyKind.SPIKE),
                                                    (1.18, Severity.LOW, AnomalyKind.SPIKE),
                                                    (0.3, Severity.HIGH, AnomalyKind.DIP),
                                                    (0.7, Severity.MEDIUM, AnomalyKind.DIP),
                                                    (0.82, Severity.LOW, AnomalyKind.DIP)])
def test_injected_spikes_and_dips_are_found_with_their_band(factor, severity, kind):
    values = daily(noise=0.02)
    values[100] *= factor                 # a Wednesday
    found = detect(series(values))
    assert len(found) == 1, found
    a = found[0]
    assert (a.start, a.end, a.kind, a.severity) == (day(100), day(100), kind, severity)
    assert a.actual == pytest.approx(values[100])
    assert a.expected == pytest.approx(1000, rel=0.04)


def test_a_spike_on_a_weekend_is_measured_against_the_weekend():
    values = daily(noise=0.02)
    values[96] = 1000.0                   # a Saturday at the weekday level: +67% for a Saturday
    (a,) = detect(series(values))
    assert a.start == day(96) and a.severity is Severity.HIGH and a.expected == pytest.approx(600, rel=0.05)


def test_month_end_batches_alarm_at_most_on_the_first_month():
    values = daily(days=400, month_end=1.8, seed=2)
    found = detect(series(values))
    assert [a.start.month for a in found] == [1], found       # first month: nothing to learn it from yet
    values[-60] *= 1.8                                        # a real spike later is still found
    assert day(len(values) - 60) in {a.start for a in detect(series(values))}


def test_growth_and_decline_are_normal():
    for growth in (0.01, -0.006):         # +1% a day (x6 in half a year), -0.6% a day
        alarms = [len(detect(series(daily(growth=growth, seed=seed)))) for seed in range(10)]
        assert sum(alarms) <= 2, (growth, alarms)


def test_consecutive_anomalous_days_are_one_episode_with_the_worst_day():
    values = daily(noise=0.02)
    values[100:103] *= np.array([1.3, 2.0, 1.4])
    (a,) = detect(series(values))
    assert (a.start, a.end, a.kind, a.severity) == (day(100), day(102), AnomalyKind.SPIKE, Severity.HIGH)
    assert a.actual == pytest.approx(values[101])


def test_a_spike_then_a_dip_are_two_episodes():
    values = daily(noise=0.02)
    values[100] *= 1.6
    values[101] *= 0.5
    assert [a.kind for a in detect(series(values))] == [AnomalyKind.SPIKE, AnomalyKind.DIP]


def test_a_level_shift_alerts_once_then_is_the_new_normal():
    values = daily(days=200, noise=0.02)
    values[90:] *= 1.4
    (a,) = detect(series(values))
    assert (a.kind, a.start, a.severity) == (AnomalyKind.LEVEL_SHIFT, day(90), Severity.MEDIUM)
    assert a.end == day(96)               # confirmed after 7 days, then re-anchored
    values[150] *= 1.6                    # a spike on the new level is measured against the new level
    found = detect(series(values))
    assert [x.kind for x in found] == [AnomalyKind.LEVEL_SHIFT, AnomalyKind.SPIKE]
    assert found[1].expected == pytest.approx(1400, rel=0.05)


def test_a_drop_in_level_is_a_level_shift_too():
    values = daily(days=200, noise=0.02)
    values[120:] *= 0.6
    (a,) = detect(series(values))
    assert (a.kind, a.start) == (AnomalyKind.LEVEL_SHIFT, day(120))


def test_a_noisy_series_raises_few_false_alarms():
    alarms = [len(detect(series(daily(days=365, noise=0.12, seed=seed)))) for seed in range(10)]
    assert sum(alarms) <= 10, alarms      # at most one a year on average (12% daily noise)


def test_a_threshold_alarms_whatever_the_statistics():
    values = daily(noise=0.02)
    found = detect(series(values), threshold=1040)
    assert found and all(a.by_threshold and a.actual > 1040 for a in found)
    assert all(a.severity is Severity.LOW for a in found)                 # within 10% of expected
    assert detect(series(values), threshold=5000) == []
    values[100] *= 1.3
    assert [a.start for a in detect(series(values), relative=0.2)] == [day(100)]


def test_the_driver_is_the_part_that_moved_most():
    web, search, batch = daily(seed=1, level=500), daily(seed=2, level=300), daily(seed=3, level=200)
    search[100] += 400
    web[100] -= 30
    parts = {"namespace web": series(web), "namespace search": series(search), "namespace batch": series(batch)}
    (a,) = detect(series(web + search + batch), breakdown=parts)
    assert a.driver == "namespace search"
    assert a.driver_delta == pytest.approx(400, abs=40)


def test_the_driver_of_a_dip_is_the_part_that_fell_most():
    web, search = daily(seed=1, level=600), daily(seed=2, level=400)
    web[100] *= 0.2
    search[100] *= 1.05
    (a,) = detect(series(web + search), breakdown={"service EC2": series(web), "service S3": series(search)})
    assert (a.kind, a.driver) == (AnomalyKind.DIP, "service EC2") and a.driver_delta < -400


def test_an_acknowledged_episode_is_not_reported_again():
    values = daily(noise=0.02)
    values[100:102] *= 1.8
    values[140] *= 1.8
    assert len(detect(series(values))) == 2
    (left,) = detect(series(values), acknowledged={day(101)})
    assert left.start == day(140)


def test_days_without_data_are_tolerated():
    values = daily(noise=0.02)
    values[[10, 50, 51, 99, 101]] = np.nan
    values[100] *= 1.8
    values[102] *= 1.8
    (a,) = detect(series(values))          # the NaN day between two anomalous days does not split them
    assert (a.start, a.end) == (day(100), day(102))
    assert detect(series(np.full(30, np.nan))) == []


def test_a_short_history_raises_nothing_statistical():
    values = daily(days=10)
    values[5] *= 3
    assert detect(series(values)) == []
    assert [a.by_threshold for a in detect(series(values), threshold=1500)] == [True]


def test_results_on_a_prefix_do_not_change_when_more_days_come():
    values = daily(days=200, noise=0.02)
    values[60] *= 1.7
    values[130:] *= 1.4
    full = detect(series(values))
    assert detect(series(values[:120])) == [a for a in full if a.end < day(120)]


def _hourly(days: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    shape = 1 + 0.5 * np.sin(2 * np.pi * (hours % 24) / 24)
    return 40 * shape * (1 + rng.normal(0, 0.03, len(hours)))


def test_an_intra_day_spike_is_found_in_hourly_data():
    per_hour = _hourly(60)
    per_hour[50 * 24 + 14: 50 * 24 + 16] *= 2.5     # two hours; the day as a whole moves ~+10%
    days = per_hour.reshape(-1, 24).sum(axis=1)
    hourly = HourlySeries(datetime(2026, 1, 5), per_hour)
    found = detect(series(days), hourly=hourly)
    (a,) = [x for x in found if x.hours is not None]
    assert a.hours == (datetime(2026, 2, 24, 14), datetime(2026, 2, 24, 15))
    assert (a.start, a.kind, a.severity) == (day(50), AnomalyKind.SPIKE, Severity.HIGH)
    assert detect(series(days), hourly=hourly, acknowledged={day(50)}) == []


def test_an_hourly_episode_on_a_day_the_daily_detector_reports_is_not_repeated():
    per_hour = _hourly(60)
    per_hour[50 * 24: 51 * 24] *= 2
    days = per_hour.reshape(-1, 24).sum(axis=1)
    found = detect(series(days), hourly=HourlySeries(datetime(2026, 1, 5), per_hour))
    assert [(a.start, a.hours) for a in found] == [(day(50), None)]
