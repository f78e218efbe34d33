"""Forecasts on known series: trends and weekly patterns recovered, intervals that cover, gaps, short series."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from finops_operator.errors import ConfigError
from finops_operator.forecast import METHODS, forecast
from finops_operator.models.spend import SpendSeries
from finops_operator.simulator.costseries import FAMILIES, cost_series

START = date(2024, 1, 1)                      # a Monday


def series(values) -> SpendSeries:
    return SpendSeries(START, np.asarray(values, dtype=np.float64))


def values_of(result) -> np.ndarray:
    return np.array([p.value for p in result.points])


def test_linear_trend_is_recovered():
    days = np.arange(90)
    result = forecast(series(200 + 3.0 * days), 14, "linear")
    expected = 200 + 3.0 * np.arange(90, 104)
    assert np.allclose(values_of(result), expected, rtol=1e-6)
    assert result.method == "linear" and result.backtest_mape == pytest.approx(0.0, abs=1e-9)
    assert [p.day for p in result.points] == [START + timedelta(days=90 + i) for i in range(14)]


def test_weekly_pattern_is_recovered_by_auto():
    rng = np.random.default_rng(7)
    week = np.array([100, 110, 105, 108, 102, 40, 35], dtype=np.float64)     # Monday .. Sunday
    values = np.tile(week, 16) + rng.normal(0, 1.0, 112)
    result = forecast(series(values), 21)
    assert result.method in ("holt-winters", "seasonal-naive")
    assert np.max(np.abs(values_of(result) - np.tile(week, 3))) < 6.0      # 112 days is a Monday again
    assert result.backtest_mape < 0.03


def test_interval_covers_about_95_percent_of_noise_and_widens():
    rng = np.random.default_rng(3)
    inside = []
    widths = []
    for trial in range(40):
        values = 500 + rng.normal(0, 25, 150)
        result = forecast(series(values[:120]), 30)
        actual = values[120:]
        inside += [p.lower <= a <= p.upper for p, a in zip(result.points, actual)]
        widths.append([p.upper - p.lower for p in result.points])
    assert 0.88 <= np.mean(inside) <= 0.995
    mean_width = np.mean(widths, axis=0)
    assert mean_width[-1] >= mean_width[0]


def test_unknown_days_are_filled_not_zeros_and_leading_ones_dropped():
    week = np.array([100, 100, 100, 100, 100, 50, 50], dtype=np.float64)
    values = np.tile(week, 10)
    values[[20, 21, 40]] = np.nan
    values = np.concatenate([[np.nan, np.nan], values])
    result = forecast(SpendSeries(START - timedelta(days=2), values), 7, "seasonal-naive")
    assert np.allclose(values_of(result), week)
    assert result.points[0].day == START + timedelta(days=70)
    assert result.backtest_mape == pytest.approx(0.0)


def test_trailing_unknown_days_are_forecast_from_after_the_series():
    values = np.concatenate([np.full(60, 80.0), [np.nan, np.nan]])
    result = forecast(series(values), 3)
    assert result.points[0].day == START + timedelta(days=62)
    assert np.allclose(values_of(result), 80.0)


def test_short_series_falls_back_to_the_moving_average_and_says_so():
    result = forecast(series([10.0, 12.0, 11.0, 13.0, 9.0]), 4, "holt-winters")
    assert result.method == "moving-average (history of 5 days, fewer than 14)"
    assert np.allclose(values_of(result), 11.0)
    assert result.backtest_mape is None
    assert all(p.lower < p.value < p.upper for p in result.points)


def test_constant_and_zero_series():
    flat = forecast(series(np.full(60, 42.0)), 10)
    assert np.allclose(values_of(flat), 42.0)
    assert all(p.lower == p.value == p.upper for p in flat.points)
    zeros = forecast(series(np.zeros(60)), 10)
    assert np.allclose(values_of(zeros), 0.0) and zeros.backtest_mape is None


def test_forecasts_are_never_negative():
    result = forecast(series(np.linspace(300, 10, 60)), 30, "linear")
    assert min(p.lower for p in result.points) >= 0 and min(p.value for p in result.points) >= 0


def test_negative_cost_is_refused_naming_the_day():
    values = np.full(30, 10.0)
    values[9] = -1.0
    with pytest.raises(ConfigError, match="2024-01-10") as info:
        forecast(series(values), 5)
    assert info.value.field == "2024-01-10"


def test_bad_method_horizon_and_empty_series_are_refused():
    with pytest.raises(ConfigError, match="unknown forecast method 'arima'"):
        forecast(series(np.ones(30)), 5, "arima")
    with pytest.raises(ConfigError, match="out of range"):
        forecast(series(np.ones(30)), 0)
    with pytest.raises(ConfigError, match="no day has a cost"):
        forecast(series(np.full(30, np.nan)), 5)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_gives_one_point_a_day_with_ordered_bounds(method):
    cs = cost_series("weekly", days=100, seed=1)
    result = forecast(cs.series, 45, method)
    assert result.method == method and len(result.points) == 45
    assert all(p.lower <= p.value <= p.upper for p in result.points)


def test_holt_winters_ignores_an_injected_spike():
    week = np.array([100, 100, 100, 100, 100, 60, 60], dtype=np.float64)
    clean = np.tile(week, 12)
    spiked = clean.copy()
    spiked[-3] *= 4                       # a spike three days before the end
    a = values_of(forecast(series(clean), 14, "holt-winters"))
    b = values_of(forecast(series(spiked), 14, "holt-winters"))
    assert np.max(np.abs(a - b)) < 5.0


def test_cost_series_are_seeded_labelled_and_cover_every_family():
    for family in FAMILIES:
        one, two = cost_series(family, days=120, seed=4), cost_series(family, days=120, seed=4)
        assert np.array_equal(one.series.values, two.series.values)
        assert len(one.series.values) == 120 and (one.series.values >= 0).all()
        assert one.labels and one.label_mask().sum() >= len(one.labels)
        spikes = [lab for lab in one.labels if lab.kind == "spike" and family not in ("viral",)]
        for lab in spikes:
            i = (lab.start - one.series.start).days
            assert one.series.values[i] > one.clean[i]
