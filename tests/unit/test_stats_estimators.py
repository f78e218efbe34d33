"""The pure estimators over a per-bucket summary: recency-weighted quantile, trend, spikes."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finops_operator.errors import ConfigError, DataSourceError
from finops_operator.models.usage import DaySummary
from finops_operator.simulator.patterns import render
from finops_operator.stats.recency import bucket_weights, recent_quantile
from finops_operator.stats.spikes import spikes
from finops_operator.stats.trend import trend

STEP = 300
DAY = 86400
END = 1_763_596_800          # 2025-11-20 00:00 UTC
QS = (50, 90, 95, 99)


def summary(values: np.ndarray, bucket: int = DAY, quantiles=QS, end: int = END) -> DaySummary:
    """Exact per-bucket figures of an evenly spaced series ending at ``end`` (NaN = missing).

    Like stats.summarise: a bucket without samples holds NaN figures and 0 samples.
    """
    per = bucket // STEP
    rows = np.asarray(values, dtype=np.float64).reshape(-1, per)
    ends = tuple(end - bucket * (len(rows) - 1 - i) for i in range(len(rows)))
    samples = tuple(int(np.count_nonzero(~np.isnan(r))) for r in rows)

    def each(fn):
        return tuple(float(fn(r[~np.isnan(r)])) if n else math.nan for r, n in zip(rows, samples))

    return DaySummary(bucket, ends, samples, each(np.mean), each(np.max),
                      {q: each(lambda r, q=q: np.percentile(r, q)) for q in quantiles})


def times(days: int) -> np.ndarray:
    return END - STEP * np.arange(days * DAY // STEP - 1, -1, -1, dtype=np.int64)


# --------------------------------------------------------------------------- recent_quantile


def test_identical_buckets_give_the_window_quantile_exactly():
    day = np.random.default_rng(1).lognormal(0.0, 0.5, DAY // STEP)
    days = summary(np.tile(day, 14))
    for q in QS:
        assert recent_quantile(days, q, math.inf) == pytest.approx(np.percentile(day, q), rel=1e-6)
        assert recent_quantile(days, q, 24.0) == pytest.approx(np.percentile(day, q), rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), sigma=st.floats(0.05, 0.8), q=st.sampled_from(QS),
       shape=st.sampled_from(["lognormal", "uniform", "normal"]))
def test_infinite_half_life_approximates_the_window_quantile_on_stationary_data(seed, sigma, q, shape):
    # Above a bucket's highest computed quantile its distribution is a straight line to the max, so a
    # tail much heavier than these (lognormal sigma 1: max ~ 30 x median) reads its p99 up to ~15% high.
    rng = np.random.default_rng(seed)
    n = 14 * DAY // STEP
    values = {"lognormal": lambda: rng.lognormal(0.0, sigma, n),
              "uniform": lambda: rng.uniform(1.0, 1.0 + 10 * sigma, n),
              "normal": lambda: np.clip(rng.normal(5.0, 5.0 * sigma, n), 0, None)}[shape]()
    got = recent_quantile(summary(values), q, math.inf)
    spread = np.percentile(values, 99.9) - np.percentile(values, 0.1)
    assert abs(got - np.percentile(values, q)) <= 0.05 * spread     # heavy tails: per-day p99s vary


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), q=st.integers(50, 99))
def test_any_percentile_is_read_between_the_computed_ones(seed, q):
    values = np.random.default_rng(seed).gamma(2.0, 1.0, 14 * DAY // STEP)
    got = recent_quantile(summary(values), q, math.inf)
    spread = np.percentile(values, 99.9) - np.percentile(values, 0.1)
    assert abs(got - np.percentile(values, q)) <= 0.06 * spread


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), half_life=st.floats(1.0, 1000.0), q1=st.integers(1, 99), q2=st.integers(1, 100))
def test_quantile_is_monotone_in_q_and_within_the_series_range(seed, half_life, q1, q2):
    rng = np.random.default_rng(seed)
    values = rng.lognormal(0.0, 0.7, 14 * DAY // STEP) * np.repeat(rng.uniform(0.5, 2.0, 14), DAY // STEP)
    days = summary(values)
    a, b = recent_quantile(days, min(q1, q2), half_life), recent_quantile(days, max(q1, q2), half_life)
    assert 0.0 <= a <= b + 1e-9 <= values.max() + 1e-6


def test_weights_halve_every_half_life_and_follow_the_samples():
    days = summary(np.ones(7 * DAY // STEP))
    weights = bucket_weights(days, 24.0)
    assert np.allclose(weights[:-1] / weights[1:], 0.5)
    assert weights.sum() == pytest.approx(1.0)
    gappy = np.ones(7 * DAY // STEP)
    gappy[-DAY // STEP:-DAY // STEP // 2] = np.nan                       # the newest day half missing
    w = bucket_weights(summary(gappy), math.inf)
    assert w[-1] == pytest.approx(w[0] / 2)
    assert np.allclose(bucket_weights(days, math.inf), 1 / 7)
    # a tiny half-life over a long window does not underflow to nothing
    assert bucket_weights(summary(np.ones(30 * DAY // STEP)), 0.01)[-1] == pytest.approx(1.0)


def test_recent_level_wins_after_a_level_shift():
    values = np.concatenate((np.full(7 * DAY // STEP, 1.0), np.full(7 * DAY // STEP, 3.0)))
    values = values * (1 + 0.01 * np.random.default_rng(2).standard_normal(len(values)))
    days = summary(values)
    assert recent_quantile(days, 50, 24.0) == pytest.approx(3.0, rel=0.03)
    assert recent_quantile(days, 25, math.inf) < 1.1                  # the old week still counts in full
    assert recent_quantile(days, 25, 24.0) > 2.9                      # ... and barely at a day's half-life


def test_empty_buckets_count_for_nothing():
    values = np.concatenate((np.full(DAY // STEP, 9.0), np.full(2 * DAY // STEP, np.nan),
                             np.linspace(1.0, 2.0, 4 * DAY // STEP)))
    days = summary(values)
    assert math.isnan(days.mean[1]) and days.samples[1] == 0
    for half_life in (math.inf, 24.0):
        got = recent_quantile(days, 90, half_life)
        assert math.isfinite(got) and got <= 9.0
    assert recent_quantile(days, 100, 24.0) == 9.0
    fit = trend(days)
    assert fit.buckets == 5 and math.isfinite(fit.slope_per_day)
    verdict = spikes(days, q=90)
    assert verdict.peak == 9.0 and math.isfinite(verdict.typical)


def test_p100_is_the_max_and_flat_series_are_their_level():
    values = np.full(3 * DAY // STEP, 0.25)
    values[10] = 4.0
    days = summary(values)
    assert recent_quantile(days, 100, 1.0) == 4.0
    assert recent_quantile(summary(np.full(3 * DAY // STEP, 0.25)), 95, 24.0) == pytest.approx(0.25)


def test_bad_inputs_raise_errors_that_name_the_field():
    days = summary(np.ones(2 * DAY // STEP))
    with pytest.raises(ConfigError, match="halfLifeHours"):
        recent_quantile(days, 95, 0.0)
    with pytest.raises(ConfigError, match="percentile"):
        recent_quantile(days, 0, 24.0)
    with pytest.raises(DataSourceError, match="no bucket with samples"):
        recent_quantile(summary(np.full(2 * DAY // STEP, np.nan)), 95, 24.0)


# --------------------------------------------------------------------------- trend


def test_linear_ramp_gives_a_clear_trend_with_the_right_slope():
    t = times(14)
    values = 1.0 + 0.1 * (t - t[0]) / DAY                              # +0.1 per day
    fit = trend(summary(values))
    assert fit.clear and fit.r2 > 0.99
    assert fit.slope_per_day == pytest.approx(0.1, rel=1e-3)
    assert fit.end_value == pytest.approx(values[-DAY // STEP:].mean(), rel=1e-3)   # the last bucket's mean
    assert fit.at(7) == pytest.approx(fit.end_value + 0.7)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), level=st.floats(0.1, 100.0), rel_slope=st.floats(-0.06, 0.06))
def test_theil_sen_slope_is_recovered_under_noise(seed, level, rel_slope):
    t = times(14)
    clean = level * (1.0 + rel_slope * (t - t[0]) / DAY)
    noisy = clean * (1.0 + 0.1 * np.random.default_rng(seed).standard_normal(len(t)))
    fit = trend(summary(np.clip(noisy, 0, None)))
    assert fit.slope_per_day == pytest.approx(level * rel_slope, abs=0.01 * level)
    if abs(rel_slope) >= 0.03:          # >= ~30% over the 13 days between the first and last bucket
        assert fit.clear
    if abs(rel_slope) <= 0.01:          # <= ~13%: a drift too small to follow
        assert not fit.clear


def test_flat_noise_weekly_and_daily_cycles_are_not_trends():
    t = times(14)
    rng = np.random.default_rng(3)
    assert not trend(summary(1.0 + 0.2 * rng.standard_normal(len(t)))).clear
    for pattern, params in (("daily", {"base": 1.0, "amplitude": 0.8}),
                            ("weekend", {"base": 1.0, "amplitude": 0.5, "weekendFactor": 0.3}),
                            ("burst", {"base": 0.2}), ("batch", {"base": 0.05})):
        values = render(pattern, t.astype(float), params, 0.05, np.random.default_rng(4)).values
        assert not trend(summary(values)).clear, pattern


def test_one_odd_bucket_does_not_tilt_the_fit():
    t = times(14)
    values = 2.0 - 0.1 * (t - t[0]) / DAY
    values[3 * DAY // STEP: 4 * DAY // STEP] = 50.0                     # a day of something else
    fit = trend(summary(values))
    assert fit.slope_per_day == pytest.approx(-0.1, rel=0.05) and fit.clear


def test_trend_of_a_quantile_and_bad_statistics():
    t = times(10)
    days = summary(1.0 + 0.2 * (t - t[0]) / DAY)
    assert trend(days, "p95").slope_per_day == pytest.approx(0.2, rel=1e-3)
    assert trend(days, "max").clear
    with pytest.raises(ConfigError, match="p97.*p50, p90, p95, p99"):
        trend(days, "p97")
    single = trend(summary(np.ones(DAY // STEP)))
    assert not single.clear and single.end_value == 1.0


# --------------------------------------------------------------------------- spikes


def test_rare_bursts_are_spikes_and_a_jvm_plateau_is_not():
    t = times(14).astype(float)
    burst = render("burst", t, {"base": 2**28, "burstsPerDay": 0.3}, 0.03, np.random.default_rng(5)).values
    verdict = spikes(summary(burst))
    assert verdict.rare and verdict.peak == pytest.approx(burst.max())
    assert verdict.near_peak_share <= 0.25 and verdict.peak_ratio >= 5
    plateau = render("jvm", t, {"base": 2**28, "heap": 2**30}, 0.02, np.random.default_rng(5)).values
    assert not spikes(summary(plateau)).rare
    assert not spikes(summary(np.full(len(t), 2.0**30))).rare


def test_frequent_peaks_are_not_rare_even_when_high():
    t = times(14).astype(float)
    batch = render("batch", t, {"base": 0.05, "factor": 20}, 0.02, np.random.default_rng(6)).values
    verdict = spikes(summary(batch), q=95)
    assert verdict.peak_ratio > 10 and verdict.near_peak_share > 0.25 and not verdict.rare


def test_spikes_needs_a_computed_quantile():
    with pytest.raises(ConfigError, match="percentile 97.*50, 90, 95, 99"):
        spikes(summary(np.ones(2 * DAY // STEP)), q=97)
    with pytest.raises(ConfigError, match="no per-bucket quantiles"):
        spikes(summary(np.ones(2 * DAY // STEP), quantiles=()))
