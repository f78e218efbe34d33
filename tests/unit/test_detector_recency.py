"""The right-sizers' recency, trend and rare-spike rules, on series summarised by the real snapshot path."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finops_operator.detectors.cpu import CpuRightsizing
from finops_operator.detectors.memory import MemoryRightsizing
from finops_operator.detectors.usage_level import TREND_END, TREND_HORIZON, usage_level
from finops_operator.models import HPA, DaySummary, UsageStats
from finops_operator.pricing.catalog import PriceBook
from finops_operator.simulator.patterns import render
from finops_operator.stats import summarise
from finops_operator.units import parse_cpu, parse_memory
from finops_operator.usage import usage_grid
from tests.support.fixtures_detectors import GIB, MIB, StateBuilder, app, policy, window

DAY = 288                                   # 5-minute points per day
WINDOW = window()
TS = np.arange(int(WINDOW.start.timestamp()), int(WINDOW.end.timestamp()) + 1, WINDOW.step_seconds, dtype=np.int64)
RNG = np.random.default_rng(7)


def summary(values: np.ndarray, percentiles=(90, 99)) -> UsageStats:
    """The UsageStats (with per-day buckets) the scan computes for one series over the window."""
    return next(iter(summarise(np.asarray(values, dtype=np.float64)[None, :], TS, usage_grid(TS, WINDOW),
                               percentiles=percentiles)))


def noisy(level: np.ndarray | float, rel: float = 0.05) -> np.ndarray:
    return np.clip(np.asarray(level) * (1 + rel * RNG.standard_normal(len(TS))), 0, None)


def ramp(start: float, end: float) -> np.ndarray:
    return np.linspace(start, end, len(TS))


def fresh() -> StateBuilder:
    return StateBuilder().node("n-base", cpu=4.0, memory=16 * GIB)


def cpu_finding(builder, values, settings=None, **container):
    builder.workload("web", app("api", **({"cpu": "2"} | container)), replicas=2)
    builder.usage("web", "api", cpu=summary(values))
    result = CpuRightsizing(settings or policy(), PriceBook.load()).run(builder.build())
    assert len(result.findings) == 1, result.skipped
    return result.findings[0]


def memory_finding(builder, values, settings=None, **container):
    builder.workload("web", app("api", **({"memory": "8Gi", "memory_limit": "8Gi"} | container)), replicas=2)
    builder.usage("web", "api", memory=summary(values))
    result = MemoryRightsizing(settings or policy(), PriceBook.load()).run(builder.build())
    assert len(result.findings) == 1, result.skipped
    return result.findings[0]


def after(finding, field: str) -> float:
    change = next(c for c in finding.changes if c.field == field)
    return (parse_cpu if field.endswith("cpu") else parse_memory)(change.after)


def test_defaults_are_the_tuned_ones():
    s = policy().detectors
    cpu = s.cpu
    assert (cpu.percentile, cpu.headroom_percent, cpu.half_life_hours, cpu.growth_horizon_days) == (90, 5, 72, 3)
    assert (s.memory.percentile, s.memory.headroom_percent, s.memory.half_life_hours) == (99, 10, 72)
    assert s.memory.spike_policy.value == "Peak" and s.memory.growth_horizon_days == 7


def test_steady_usage_is_sized_from_the_recent_quantile(builder):
    values = noisy(0.4)
    f = cpu_finding(builder, values)
    assert f.evidence["decided_by"] == "recent-quantile"
    inputs = f.evidence["sizing_inputs"]
    assert inputs["recent_quantile"] == pytest.approx(np.percentile(values, 90), rel=0.02)
    assert after(f, "resources.requests.cpu") == pytest.approx(np.percentile(values, 90) * 1.05, abs=0.011)
    assert inputs["trend_clear"] is False and inputs["half_life_hours"] == 72


def test_recent_week_weighs_more_than_the_old_one(builder):
    level = np.where(np.arange(len(TS)) < len(TS) // 2, 1.0, 0.3)          # a busy week, then a quiet one
    f = cpu_finding(builder, noisy(level))
    assert f.evidence["p90"] > 0.9                                           # the window's p90 is the busy week's
    assert 0.3 < after(f, "resources.requests.cpu") < 0.4                    # the request follows the quiet one
    # at p90 the busy week still holds 16% of the recency weight: the step is followed as a trend to its new level
    assert f.evidence["decided_by"] == TREND_END
    assert f.evidence["sizing_inputs"]["trend_target"] == pytest.approx(0.3, rel=0.05)


def test_an_old_busy_spell_fades_out_of_the_recent_quantile(builder):
    level = np.where(np.arange(len(TS)) < 2 * DAY, 1.0, 0.3)                   # two busy days, twelve quiet ones
    f = cpu_finding(builder, noisy(level))
    assert f.evidence["p90"] > 0.3 * 1.2 and f.evidence["decided_by"] == "recent-quantile"
    assert f.evidence["sizing_inputs"]["recent_quantile"] < 0.3 * 1.1


def test_a_clear_decline_is_followed_to_the_end_of_the_window(builder):
    values = noisy(ramp(1.0, 0.4))
    f = cpu_finding(builder, values)
    assert f.evidence["decided_by"] == TREND_END
    inputs = f.evidence["sizing_inputs"]
    assert inputs["trend_clear"] and inputs["trend_slope_per_day"] == pytest.approx(-0.6 / 14, rel=0.1)
    request = after(f, "resources.requests.cpu")
    # the end level's p90 + 5% (0.447), a little more for the decline within the last day
    assert 0.44 <= request <= 0.5
    assert request < np.percentile(values, 90) * 0.7


def test_memory_growth_is_sized_for_the_growth_horizon(builder):
    values = noisy(ramp(1 * GIB, 2 * GIB), rel=0.01)
    f = memory_finding(builder, values)
    assert f.evidence["decided_by"] == TREND_HORIZON
    inputs = f.evidence["sizing_inputs"]
    assert inputs["horizon_days"] == 7
    week_ahead = 2 * GIB + 7 * GIB / 14
    assert after(f, "resources.requests.memory") >= week_ahead * 1.1 * 0.97
    no_horizon = memory_finding(fresh(), values, policy(memory={"growthHorizonDays": 0}))
    assert no_horizon.evidence["decided_by"] == TREND_END
    assert after(no_horizon, "resources.requests.memory") < after(f, "resources.requests.memory")


def test_rare_memory_spikes_keep_the_request_at_the_peak(builder):
    values = noisy(np.full(len(TS), 1.0 * GIB), rel=0.01)
    values[3 * DAY + 100: 3 * DAY + 106] = 3 * GIB                           # one 30-minute spike
    limits = {"memory": "8Gi", "memory_limit": "16Gi"}                        # not Guaranteed: request < limit
    f = memory_finding(builder, values, **limits)
    assert f.evidence["decided_by"] == "observed-peak-rare-spikes"
    assert f.evidence["sizing_inputs"]["spikes_rare"] is True
    assert after(f, "resources.requests.memory") >= 3 * GIB
    pct = memory_finding(fresh(), values, policy(memory={"spikePolicy": "Percentile"}), **limits)
    assert pct.evidence["decided_by"] == "recent-quantile" and pct.evidence["spike_policy"] == "Percentile"
    assert after(pct, "resources.requests.memory") < 1.5 * GIB
    assert after(pct, "resources.limits.memory") >= 3 * GIB * 1.1              # the limit still covers the peak


def test_guards_name_themselves_in_decided_by(builder):
    values = noisy(ramp(1.0, 0.4))
    hpa = HPA("web", 2, 10, current_replicas=3, target_cpu_utilization=70)
    builder.workload("web", app("api", cpu="2"), replicas=2, hpa=hpa).usage("web", "api", cpu=summary(values))
    f = CpuRightsizing(policy(), PriceBook.load()).run(builder.build()).findings[0]
    assert f.evidence["decided_by"] == "hpa-target"
    oom = memory_finding(fresh(), noisy(np.full(len(TS), 900.0 * MIB)),
                         memory="1Gi", memory_limit="1Gi", oom_kills=2)
    assert oom.evidence["decided_by"] == "oom-bump"


def test_without_a_per_bucket_summary_the_window_percentile_decides(builder):
    stats = dataclasses.replace(summary(noisy(ramp(1.0, 0.4))), days=None)
    builder.workload("web", app("api", cpu="2"), replicas=2).usage("web", "api", cpu=stats)
    f = CpuRightsizing(policy(), PriceBook.load()).run(builder.build()).findings[0]
    assert f.evidence["decided_by"] == "window-percentile" and f.evidence["sizing_inputs"] == {}
    assert after(f, "resources.requests.cpu") == pytest.approx(stats.percentile(90) * 1.05, abs=0.011)


@pytest.mark.parametrize("pattern,params", [("batch", {"base": 0.05}), ("weekend", {"base": 0.5, "amplitude": 0.3}),
                                            ("jvm", {"base": 0.2, "startupFactor": 5.0}),
                                            ("burst", {"base": 0.1})])
def test_periodic_families_are_not_mistaken_for_trends(builder, pattern, params):
    values = render(pattern, TS.astype(float), params, 0.05, np.random.default_rng(3)).values
    f = cpu_finding(builder, values, cpu="4")
    assert f.evidence["decided_by"] == "recent-quantile"


FIGURE = st.one_of(st.floats(0, 1e12), st.just(math.nan), st.just(math.inf), st.just(0.0))


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 20), data=st.data(), q=st.integers(50, 100), half_life=st.integers(1, 2160),
       horizon=st.integers(0, 90))
def test_any_per_bucket_summary_gives_a_finite_level_and_never_raises(n, data, q, half_life, horizon):
    figures = st.lists(FIGURE, min_size=n, max_size=n).map(tuple)
    days = DaySummary(86400, tuple(86400 * (i + 1) for i in range(n)),
                      data.draw(st.lists(st.integers(0, 300), min_size=n, max_size=n).map(tuple)),
                      data.draw(figures), data.draw(figures), {q2: data.draw(figures) for q2 in {q, 99} - {100}})
    stats = UsageStats(samples=10, expected=10, quantiles={q2: 1.0 for q2 in {q, 99} - {100}}, max=2.0, mean=1.0,
                       std=0.1, days=days)
    level = usage_level(stats, q, half_life, horizon)
    assert math.isfinite(level.value) and level.value >= 0
    assert level.decided_by in ("window-percentile", "recent-quantile", TREND_END, TREND_HORIZON)
