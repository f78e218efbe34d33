"""Each traffic pattern has the shape it claims (noise off unless the test is about noise)."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from finops_operator.simulator.patterns import PATTERNS, render

STEP = 300
END = int(datetime(2026, 11, 20, tzinfo=timezone.utc).timestamp())   # a Friday, 00:00 UTC
T = END - STEP * np.arange(14 * 288 - 1, -1, -1, dtype=np.int64)     # 14 days, 4032 points
GI = 2**30


def curve(pattern: str, noise: float = 0.0, seed: int = 1, **params: float):
    return render(pattern, T, params, noise, np.random.default_rng(seed))


def utc_hour(t: np.ndarray) -> np.ndarray:
    return np.array([datetime.fromtimestamp(int(x), timezone.utc).hour for x in t])


def weekday(t: np.ndarray) -> np.ndarray:
    return np.array([datetime.fromtimestamp(int(x), timezone.utc).weekday() for x in t])


def test_steady_is_flat_at_base():
    values = curve("steady", base=0.2).values
    assert values.shape == T.shape
    assert np.allclose(values, 0.2)


def test_daily_cycle_peaks_at_peak_hour_and_bottoms_twelve_hours_later():
    values = curve("daily", base=1.0, amplitude=0.5, peakHour=14).values
    hours = utc_hour(T)
    assert values[hours == 14].mean() == pytest.approx(1.5, rel=0.02)
    assert values[hours == 2].mean() == pytest.approx(0.5, rel=0.05)
    assert values.min() >= 0.5 - 1e-9 and values.max() <= 1.5 + 1e-9


def test_weekend_effect_lowers_saturday_and_sunday():
    values = curve("weekend", base=1.0, amplitude=0.3, weekendFactor=0.4).values
    days = weekday(T)
    weekend, weekdays = values[days >= 5].mean(), values[days < 5].mean()
    assert weekend < 0.5 * weekdays
    assert weekend == pytest.approx(0.4 * weekdays, rel=0.05)


def test_seasonal_weekly_swell_peaks_on_its_day():
    values = curve("seasonal", base=10.0, amplitude=4.0, periodDays=7, peakDay=0).values
    day_index = (T // 86400) % 7
    assert values[day_index == 0].mean() > values[day_index == 3].mean() + 5


def test_seasonal_monthly_swell_is_slow():
    values = curve("seasonal", base=10.0, amplitude=4.0, periodDays=30).values
    # a 30-day period changes little within one day
    assert np.abs(np.diff(values)).max() < 4.0 * 2 * np.pi / (30 * 288) * 1.01


def test_burst_peaks_are_5_to_20_times_base_and_short():
    values = curve("burst", base=0.1, burstsPerDay=2, burstMinutes=15).values
    ratio = values / 0.1
    assert 5.0 - 1e-9 <= ratio.max() <= 20.0 + 1e-9
    assert (ratio > 1).any()
    assert np.all(np.isclose(ratio, 1.0) | (ratio >= 5.0 - 1e-9))
    assert (ratio > 1).mean() < 0.05          # bursts are short: under 5% of the time


def test_viral_spike_jumps_then_decays_slowly():
    values = curve("viral", base=1.0, factor=10, at=0.5, decayHours=24).values
    jump = int(np.argmax(values))
    assert jump == pytest.approx(len(T) // 2, abs=2)
    assert np.allclose(values[: jump - 1], 1.0)
    assert values[jump] == pytest.approx(10.0, rel=0.01)
    day_later = values[jump + 288]
    assert 1.0 + 9 * np.exp(-1) * 0.95 < day_later < 1.0 + 9 * np.exp(-1) * 1.05
    assert np.all(np.diff(values[jump:]) <= 1e-12)   # never rises again


def test_gradual_decline_and_steady_growth_reach_their_end_factor():
    decline = curve("decline", base=2.0, endFactor=0.25).values
    growth = curve("growth", base=2.0, endFactor=3.0).values
    assert decline[0] == pytest.approx(2.0) and decline[-1] == pytest.approx(0.5)
    assert growth[0] == pytest.approx(2.0) and growth[-1] == pytest.approx(6.0)
    assert np.all(np.diff(decline) < 0) and np.all(np.diff(growth) > 0)


def test_feature_launch_is_an_s_curve():
    values = curve("launch", base=1.0, endFactor=5.0, at=0.5, widthHours=12).values
    assert values[0] == pytest.approx(1.0, abs=0.01)
    assert values[-1] == pytest.approx(5.0, abs=0.01)
    assert values[len(T) // 2] == pytest.approx(3.0, rel=0.05)
    steps = np.diff(values)
    assert np.all(steps >= 0)
    assert int(np.argmax(steps)) == pytest.approx(len(T) // 2, abs=3)   # steepest in the middle


def test_migration_is_a_step_change():
    values = curve("migration", base=4.0, endFactor=0.5, at=0.25).values
    assert set(np.round(values, 9)) == {4.0, 2.0}
    assert int(np.argmax(values < 4.0)) == pytest.approx(len(T) // 4, abs=1)


def test_memory_leak_sawtooth_hits_the_limit_and_restarts():
    base, limit, rate = 0.5 * GI, 2.0 * GI, 0.05 * GI      # 30 hours from base to limit
    result = curve("leak", base=base, rate=rate, limit=limit)
    values, ooms = result.values, result.oom_steps
    assert len(ooms) == pytest.approx(14 * 24 / 30, abs=1)
    assert values.max() == pytest.approx(limit)
    for kill in ooms:
        assert values[kill - 1] == pytest.approx(limit)     # killed at the limit
        assert values[kill] == pytest.approx(base)          # restarted at base
    between = values[ooms[0]:ooms[1] - 1]
    assert np.all(np.diff(between) > 0)                     # grows between kills


def test_leak_keeps_oom_timing_under_noise():
    clean = curve("leak", base=GI, rate=0.1 * GI, limit=3 * GI, seed=5)
    noisy = curve("leak", noise=0.05, base=GI, rate=0.1 * GI, limit=3 * GI, seed=5)
    assert np.array_equal(clean.oom_steps, noisy.oom_steps)
    assert noisy.values.max() <= 3 * GI


def test_multitenant_is_a_sum_of_independent_tenants():
    values = curve("multitenant", base=4.0, tenants=6).values
    assert 0.5 * 4.0 < values.mean() < 1.3 * 4.0
    assert values.std() > 0.05 * values.mean()
    assert np.all(values >= 0)
    assert not np.allclose(values, curve("multitenant", base=4.0, tenants=6, seed=2).values)


def test_batch_is_idle_between_runs_at_fixed_hours():
    values = curve("batch", base=0.02, factor=30, everyHours=12, atHour=3, durationMinutes=60).values
    hours = utc_hour(T)
    running = (hours == 3) | (hours == 15)
    assert np.allclose(values[~running], 0.02)              # near-idle outside the runs
    ratio = values[running] / 0.02
    assert 27 - 1e-9 <= ratio.min() and ratio.max() <= 33 + 1e-9   # factor x base, +-10% per run
    assert running.mean() == pytest.approx(2 / 24)           # two one-hour runs a day
    per_run = values[running].reshape(-1, 12)                 # 12 five-minute samples per run
    assert np.allclose(per_run, per_run[:, :1])               # one level per run
    assert len(np.unique(per_run[:, 0])) == 28                # 14 days x 2 runs, each its own level


def test_batch_runs_start_at_at_hour_every_every_hours():
    values = curve("batch", base=1.0, factor=10, everyHours=24, atHour=2, durationMinutes=30).values
    starts = np.flatnonzero((values[1:] > 1.5) & (values[:-1] < 1.5)) + 1
    assert len(starts) == 14                                  # the window starts at 00:05 on day one
    assert all(datetime.fromtimestamp(int(T[i]), timezone.utc).strftime("%H:%M") == "02:00" for i in starts)
    assert (values > 1.5).sum() == 14 * 6                     # 30 minutes = 6 samples per day


def test_jvm_memory_is_a_flat_plateau_at_xmx_with_gc_sawtooth_below():
    base, heap = 200 * 2**20, GI
    values = curve("jvm", base=base, heap=heap, gcDepth=0.2, gcMinutes=30, restartEveryHours=0).values
    top = base + heap
    assert values.max() == pytest.approx(top, rel=1e-3)       # the plateau: -Xmx plus non-heap
    assert values.min() >= base + 0.8 * heap - 1              # the sawtooth stays within gcDepth below it
    assert np.percentile(values, 99) > top * 0.98             # the plateau is touched every GC cycle
    drops = np.flatnonzero(np.diff(values) < -0.1 * heap)     # a GC: a sudden fall
    assert len(drops) == pytest.approx(14 * 48, abs=2)        # every 30 minutes
    assert np.all(np.diff(values)[np.diff(values) > 0] < 0.2 * heap / 4)   # climbs in steps between them


def test_jvm_restarts_ramp_memory_and_spike_cpu_at_the_same_times():
    mem = curve("jvm", base=GI / 4, heap=GI, restartEveryHours=48, warmupMinutes=30).values
    cpu = curve("jvm", base=0.2, startupFactor=6, restartEveryHours=48, warmupMinutes=30).values
    restarts = np.flatnonzero(T % (48 * 3600) == 0)
    assert len(restarts) == 7
    for i in restarts:
        assert mem[i] == pytest.approx(GI / 4)                # a fresh JVM holds no heap yet
        assert mem[i + 6] > GI / 4 + 0.8 * GI                 # warmed up after 30 minutes
        assert np.allclose(cpu[i:i + 6], 1.2)                 # startupFactor x base while warming up
        assert cpu[i + 6] == pytest.approx(0.2)
    assert (cpu > 0.2 + 1e-9).sum() == 7 * 6                  # and nowhere else
    assert curve("jvm", base=0.2).values.max() == pytest.approx(0.2)   # defaults: no heap, no spike


def test_noise_is_seeded_multiplicative_and_non_negative():
    a = curve("steady", noise=0.1, seed=3, base=1.0).values
    b = curve("steady", noise=0.1, seed=3, base=1.0).values
    c = curve("steady", noise=0.1, seed=4, base=1.0).values
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.std() == pytest.approx(0.1, rel=0.1)
    assert curve("steady", noise=3.0, base=1.0).values.min() >= 0


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_every_pattern_gives_finite_non_negative_values(name):
    params = {"base": 1.0, "amplitude": 0.5} if "amplitude" in PATTERNS[name].params else {"base": 1.0}
    if name in ("leak", "sawtooth"):
        params |= {"rate": 0.1, "limit": 3.0}
    if name == "jvm":
        params |= {"heap": 2.0, "startupFactor": 4.0}
    values = curve(name, noise=0.05, **params).values
    assert values.shape == T.shape and np.all(np.isfinite(values)) and values.min() >= 0
