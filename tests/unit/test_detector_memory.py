"""Memory right-sizing on hand-built cluster states."""
from __future__ import annotations

import pytest

from finops_operator.detectors.memory import MemoryRightsizing
from finops_operator.models import HPA, Change, ContainerRole, FindingType
from finops_operator.pricing.catalog import PriceBook
from finops_operator.units import parse_memory
from tests.support.fixtures_detectors import GIB, MIB, app, stats
from tests.support.fixtures_detectors import policy as default_policy

GIB_HOUR = 0.192 * 0.004237 / (4 * 0.031611 + 16 * 0.004237)


#: These tests check the sizing formula's mechanics (rounding, limit policies, guards) on hand-made window
#: summaries without per-day buckets, so the window percentile decides; they pin the formula's settings
#: from before the defaults were tuned by benchmarks/bench_quality.py (tests/unit/test_detector_recency.py
#: covers the tuned defaults and the recency, trend and spike rules).
FORMULA = {"headroomPercent": 20}


def policy(**detectors: dict):
    return default_policy(**{**detectors, "memory": {**FORMULA, **detectors.get("memory", {})}})


def run(builder, settings=None):
    return MemoryRightsizing(settings or policy(), PriceBook.load()).run(builder.build())


def one(result):
    assert len(result.findings) == 1, (result.findings, result.skipped)
    return result.findings[0]


def changes(finding):
    return {c.field: (c.before, c.after) for c in finding.changes}


def test_over_requested_cut_to_p99_plus_headroom_in_16mi_steps(builder):
    builder.workload("web", app("api", memory="2Gi", memory_limit="4Gi"), replicas=3)
    builder.usage("web", "api", memory=stats(500 * MIB, p99=550 * MIB, peak=600 * MIB))
    f = one(run(builder))
    # 550Mi x 1.2 = 660Mi -> 672Mi (16Mi steps); limit keeps 2:1 -> 1344Mi
    assert changes(f) == {"resources.requests.memory": ("2Gi", "672Mi"),
                          "resources.limits.memory": ("4Gi", "1344Mi")}
    assert f.type == FindingType.RIGHTSIZE_MEMORY and f.evidence["direction"] == "cut"
    assert f.monthly_savings == pytest.approx((2048 - 672) / 1024 * GIB_HOUR * 730 * 3, abs=0.01)
    assert f.evidence["p99"] == 550 * MIB and f.evidence["max"] == 600 * MIB


@pytest.mark.parametrize("request_text,expected", [
    ("2Gi", "672Mi"),
    ("2048Mi", "672Mi"),
    ("2G", "705M"),              # decimal style kept: 672Mi = 704.6 MB, rounded up
    ("2147483648", "704643072"),  # plain bytes kept
])
def test_memory_units_keep_their_style(builder, request_text, expected):
    builder.workload("web", app("api", memory=request_text))
    builder.usage("web", "api", memory=stats(500 * MIB, p99=550 * MIB, peak=600 * MIB))
    f = one(run(builder))
    assert changes(f) == {"resources.requests.memory": (request_text, expected)}
    assert parse_memory(expected) >= 672 * MIB


def test_oom_killed_container_is_raised_never_cut(builder):
    # usage percentiles alone would cut 2Gi to ~256Mi; the OOM kill wins
    builder.workload("web", app("api", memory="2Gi", memory_limit="2Gi", oom_kills=2))
    builder.usage("web", "api", memory=stats(180 * MIB, p99=200 * MIB, peak=2 * GIB))
    f = one(run(builder))
    # max(peak 2Gi, limit 2Gi) x 1.3 = 2662.4Mi -> 2672Mi; request = limit before, so request = limit after
    # (the pod stays Guaranteed under KeepRatio)
    assert changes(f) == {"resources.requests.memory": ("2Gi", "2672Mi"), "resources.limits.memory": ("2Gi", "2672Mi")}
    assert f.evidence["oom_killed"] is True and f.evidence["direction"] == "raise"
    assert f.monthly_savings < 0 and "OOM-killed" in f.notes[0]
    assert f.risk >= 0.2


def test_oom_killed_without_limit_raises_the_request(builder):
    builder.workload("web", app("api", memory="512Mi", reason="OOMKilled"))
    builder.usage("web", "api", memory=stats(300 * MIB, p99=400 * MIB, peak=500 * MIB))
    f = one(run(builder))
    # max(peak 500Mi, request 512Mi) x 1.3 = 665.6Mi -> 672Mi
    assert changes(f) == {"resources.requests.memory": ("512Mi", "672Mi")}
    assert f.monthly_savings < 0


def test_peak_near_limit_raises_the_limit(builder):
    builder.workload("web", app("api", memory="1Gi", memory_limit="1536Mi"))
    builder.usage("web", "api", memory=stats(600 * MIB, p99=800 * MIB, peak=1400 * MIB))
    f = one(run(builder))
    # floor = 1400Mi x 1.2 = 1680Mi (16Mi steps); the request (1Gi) is kept
    assert changes(f) == {"resources.limits.memory": ("1536Mi", "1680Mi")}
    assert "above 90% of the limit" in f.evidence["under_requested_reasons"][0]


def test_cut_limit_never_goes_below_peak_plus_headroom(builder):
    # KeepRatio 1:2 would give a 768Mi limit; the peak of 900Mi sets the floor instead
    builder.workload("web", app("api", memory="2Gi", memory_limit="4Gi"))
    builder.usage("web", "api", memory=stats(300 * MIB, p99=320 * MIB, peak=900 * MIB))
    f = one(run(builder))
    assert changes(f) == {"resources.requests.memory": ("2Gi", "384Mi"),
                          "resources.limits.memory": ("4Gi", "1088Mi")}   # 900 x 1.2 = 1080 -> 1088Mi


def test_a_cut_keeps_a_guaranteed_container_guaranteed(builder):
    """Issue 8: cuts silently turned Guaranteed pods Burstable (request cut, limit held at the peak floor)."""
    builder.workload("web", app("api", memory="4Gi", memory_limit="4Gi"))
    builder.usage("web", "api", memory=stats(300 * MIB, p99=320 * MIB, peak=900 * MIB))
    f = one(run(builder))
    assert changes(f) == {"resources.requests.memory": ("4Gi", "1088Mi"),
                          "resources.limits.memory": ("4Gi", "1088Mi")}
    # Burstable is the policy's explicit choice: then the request may go below the limit
    f = one(run(builder, policy(memory={"limitPolicy": "Burstable"})))
    assert changes(f)["resources.requests.memory"] == ("4Gi", "384Mi")


def test_a_raise_grows_the_limit_no_more_than_the_request(builder):
    """Issue 8: KeepRatio turned a 512Mi limit into 6912Mi on a raise, scored 11% risk."""
    builder.workload("web", app("api", memory="64Mi", memory_limit="512Mi"))
    builder.usage("web", "api", memory=stats(600 * MIB, p99=700 * MIB, peak=720 * MIB))
    f = one(run(builder))
    request = parse_memory(changes(f)["resources.requests.memory"][1])
    limit = parse_memory(changes(f)["resources.limits.memory"][1])
    assert request == 848 * MIB                                  # 700Mi x 1.2 -> 848Mi
    # KeepRatio alone: 848Mi x 8 = 6784Mi; bounded by +784Mi (the request's raise) and 2x (1024Mi)
    assert limit == max(request, 1024 * MIB) and limit <= 2 * 512 * MIB
    assert f.risk >= 0.25


@pytest.mark.parametrize("limit_policy,expected", [
    ("Guaranteed", {"resources.requests.memory": ("2Gi", "672Mi"), "resources.limits.memory": ("3Gi", "672Mi")}),
    ("Burstable", {"resources.requests.memory": ("2Gi", "672Mi"), "resources.limits.memory": ("3Gi", "1344Mi")}),
    ("NoCPULimit", {"resources.requests.memory": ("2Gi", "672Mi"), "resources.limits.memory": ("3Gi", "1008Mi")}),
])
def test_limit_policies(builder, limit_policy, expected):
    builder.workload("web", app("api", memory="2Gi", memory_limit="3Gi"))
    builder.usage("web", "api", memory=stats(500 * MIB, p99=550 * MIB, peak=560 * MIB))
    f = one(run(builder, policy(memory={"limitPolicy": limit_policy})))
    assert changes(f) == expected


def test_guaranteed_request_rises_with_the_peak_floor(builder):
    builder.workload("web", app("api", memory="2Gi", memory_limit="2Gi"))
    builder.usage("web", "api", memory=stats(300 * MIB, p99=320 * MIB, peak=700 * MIB))
    f = one(run(builder, policy(memory={"limitPolicy": "Guaranteed"})))
    # request = limit = max(384Mi, 700Mi x 1.2 = 840Mi -> 848Mi)
    assert changes(f) == {"resources.requests.memory": ("2Gi", "848Mi"), "resources.limits.memory": ("2Gi", "848Mi")}


def test_container_without_requests_gets_one_added(builder):
    builder.workload("web", app("api")).usage("web", "api", memory=stats(200 * MIB, p99=250 * MIB, peak=260 * MIB))
    f = one(run(builder))
    assert f.changes == [Change("resources.requests.memory", None, "304Mi")]   # 250 x 1.2 = 300 -> 304Mi
    assert f.evidence["direction"] == "add"


def test_minimum_applies(builder):
    builder.workload("web", app("api", memory="1Gi"), replicas=30)
    builder.usage("web", "api", memory=stats(1 * MIB, p99=2 * MIB, peak=3 * MIB))
    f = one(run(builder, policy(memory={"minMib": 64})))
    assert changes(f) == {"resources.requests.memory": ("1Gi", "64Mi")}


def test_usage_above_request_is_raised_but_small_raises_ignored(builder):
    builder.workload("big", app("c", memory="256Mi")).usage("big", "c", memory=stats(300 * MIB, p99=400 * MIB))
    builder.workload("small", app("c", memory="500Mi")).usage("small", "c", memory=stats(380 * MIB, p99=420 * MIB,
                                                                                         peak=430 * MIB))
    result = run(builder)
    f = one(result)
    assert f.target.workload.name == "big" and changes(f) == {"resources.requests.memory": ("256Mi", "480Mi")}
    assert f.monthly_savings < 0
    assert any("raise of" in s.reason and "minChangePercent" in s.reason for s in result.skipped)


def test_hpa_on_memory_keeps_scaling_point(builder):
    hpa = HPA("web", 3, 30, target_cpu_utilization=60, target_memory_utilization=80, current_replicas=10)
    builder.workload("web", app("api", memory="2Gi"), hpa=hpa)
    builder.usage("web", "api", memory=stats(700 * MIB, mean=640 * MIB, p99=900 * MIB, peak=950 * MIB))
    f = one(run(builder))
    # 640Mi / 0.8 = 800Mi: typical usage sits at the 80% target
    assert changes(f) == {"resources.requests.memory": ("2Gi", "800Mi")}
    assert f.evidence["replicas"] == 10 and "HPA-aware" in f.evidence["formula"]
    assert f.monthly_savings == pytest.approx((2048 - 800) / 1024 * GIB_HOUR * 730 * 10, abs=0.01)


def test_init_skipped_sidecar_sized(builder):
    builder.workload("web", app("init", role=ContainerRole.INIT, memory="1Gi"),
                     app("envoy", role=ContainerRole.SIDECAR, memory="1Gi"))
    builder.usage("web", "init", memory=stats(10 * MIB)).usage("web", "envoy", memory=stats(100 * MIB))
    result = run(builder)
    assert [f.target.name for f in result.findings] == ["envoy"]
    assert "init container" in result.skipped[0].reason


def test_too_little_data_and_missing_memory_series(builder):
    builder.workload("thin", app("c", memory="2Gi")).usage("thin", "c", memory=stats(100 * MIB, coverage=0.5))
    builder.workload("cpuonly", app("c", memory="2Gi")).usage("cpuonly", "c", cpu=stats(0.1))
    result = run(builder)
    assert not result.findings
    reasons = sorted(s.reason for s in result.skipped)
    assert "coverage 50%" in reasons[0] and "no memory usage data" in reasons[1]


def test_min_history_setting_is_honoured():
    from tests.support.fixtures_detectors import StateBuilder
    b = StateBuilder(days=1)
    b.node("n", cpu=4.0, memory=16 * GIB)
    b.workload("web", app("api", memory="2Gi")).usage("web", "api", memory=stats(100 * MIB, days=1))
    assert not MemoryRightsizing(policy(memory={"minHistoryHours": 48}), PriceBook.load()).run(b.build()).findings
    assert MemoryRightsizing(policy(), PriceBook.load()).run(b.build()).findings


def test_explicit_zero_request_is_raised(builder):
    builder.workload("web", app("api", memory="0")).usage("web", "api", memory=stats(100 * MIB, p99=120 * MIB))
    f = one(run(builder))
    # "0" is a plain number, so the new value is written in plain bytes: 120Mi x 1.2 = 144Mi
    assert changes(f) == {"resources.requests.memory": ("0", str(144 * MIB))}
    assert f.evidence["direction"] == "raise" and f.monthly_savings < 0


def test_time_window_is_recorded_in_evidence(builder):
    builder.workload("web", app("api", memory="2Gi")).usage("web", "api", memory=stats(100 * MIB))
    s = policy(memory={"timeWindow": {"days": [0, 1, 2, 3, 4], "startHour": 8, "endHour": 20,
                                      "timeZone": "Europe/Berlin"}})
    f = one(run(builder, s))
    assert f.evidence["time_window"]["timeZone"] == "Europe/Berlin"
    assert one(run(builder)).evidence["time_window"] is None


def test_oom_raise_keeps_high_confidence_despite_a_volatile_restarting_series(builder):
    # a leak: sawtooth usage (very volatile), restarted ten times -> the formula alone says ~0.3
    builder.workload("batch", app("worker", memory="6Gi", memory_limit="6Gi", oom_kills=10, restarts=10))
    builder.usage("batch", "worker", memory=stats(5 * GIB, p50=2 * GIB, mean=3 * GIB, std=3 * GIB, peak=6 * GIB,
                                                  coverage=0.95))
    f = one(run(builder))
    assert f.evidence["direction"] == "raise"
    assert f.evidence["confidence_inputs"]["oom_raise_floor"] == pytest.approx(0.9 * 0.95, abs=1e-3)
    assert f.confidence == pytest.approx(0.855, abs=1e-3)
    # a cut on the same kind of series is NOT lifted by the floor
    builder2 = type(builder)()
    builder2.workload("batch", app("worker", memory="16Gi", memory_limit="16Gi", restarts=10))
    builder2.usage("batch", "worker", memory=stats(5 * GIB, p50=2 * GIB, mean=3 * GIB, std=3 * GIB, peak=6 * GIB))
    cut = one(run(builder2))
    assert cut.evidence["direction"] == "cut" and cut.confidence < 0.5
