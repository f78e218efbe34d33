"""The quality benchmark's baselines follow their documented defaults, and its scores mean what they say."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield (importlib.import_module("quality_workloads"), importlib.import_module("quality_methods"),
               importlib.import_module("bench_quality"))
    finally:
        sys.path.remove(str(BENCH))


def test_krr_simple_is_p95_without_cpu_limit_and_max_plus_15_percent(bench):
    qw, qm, _ = bench
    w = qw.make_workload("daily", 0, 9)
    s = qm.krr_simple([w])[w.name]
    assert s.cpu_request == pytest.approx(np.percentile(w.train_cpu, 95)) and s.cpu_limit is None
    assert s.memory_request == s.memory_limit == pytest.approx(w.train_memory.max() * 1.15)


def test_vpa_reads_the_end_of_its_5_percent_bucket(bench):
    _, qm, _ = bench
    first, growth = 0.001, 1.05
    for value in (0.0004, 0.0123, 0.5, 3.0):
        end = qm.vpa_bucket_end(value, first)
        k = round(np.log(1 + end * (growth - 1) / first) / np.log(growth))
        assert end == pytest.approx(first * (growth ** k - 1) / (growth - 1))       # a bucket boundary
        assert value < end <= value * growth + first                              # the next one above the value


def test_vpa_memory_is_p90_of_recent_daily_peaks_with_margin_and_floor(bench):
    qw, qm, _ = bench
    w = qw.make_workload("steady", 1, 9)
    s = qm.vpa_like([w])[w.name]
    peaks = w.train_memory.reshape(-1, qw.PER_DAY).max(axis=1)[-8:]
    assert peaks.min() * 1.15 <= s.memory_request <= qm.vpa_bucket_end(peaks.max(), 1e7) * 1.15 + 1
    assert s.memory_request >= 250 * qm.MI
    assert s.memory_limit == pytest.approx(w.memory_limit * s.memory_request / w.memory_request)


def test_scores_savings_cpu_above_request_and_oom_at_the_limit(bench):
    qw, qm, bq = bench
    ws = qw.workloads([9], 1)
    oracle = bq.score(ws, qm.oracle(ws))
    assert oracle["oom_workloads"] == 0 and oracle["cpu_above_request"] == pytest.approx(0.05, abs=0.002)
    today = {w.name: qm.Sizing(w.cpu_request, w.cpu_limit, w.memory_request, w.memory_limit) for w in ws}
    assert bq.score(ws, today)["savings"] == 0.0
    tight = {w.name: qm.Sizing(0.0, None, w.memory_request, w.replay_memory.max()) for w in ws}
    scored = bq.score(ws, tight)
    assert scored["cpu_above_request"] > 0.99 and scored["oom_workloads"] == len(ws)


def test_finops_sizings_come_from_the_real_detectors(bench):
    qw, qm, _ = bench
    from finops_operator.settings import load_policy
    ws = qw.workloads([9], 1, ("decline", "burst"))
    sizings, unattended, decided = qm.finops(ws, load_policy({}, source="test"))
    decline = next(w for w in ws if w.family == "decline")
    assert decided[f"cpu/{decline.name}"].split(",")[0] == "trend-end"
    assert sizings[decline.name].cpu_request < np.percentile(decline.train_cpu, 90)   # follows the decline
    for w in ws:        # unattended: each value is either the recommendation (allowed) or today's (held)
        for resource in ("cpu", "memory"):
            held = ", held: " in decided.get(f"{resource}/{w.name}", "")
            got, want = (getattr(unattended[w.name], f"{resource}_request"),
                         getattr(sizings[w.name], f"{resource}_request"))
            assert got == (getattr(w, f"{resource}_request") if held else want), (w.name, resource)


def test_the_default_guardrails_let_an_oom_fix_through(bench):
    qw, qm, _ = bench
    from finops_operator.settings import load_policy
    ws = [w for w in qw.workloads([1, 2, 3, 4], 5) if w.train_oom_kills]
    assert ws, "the seeds hold OOM-killed workloads"
    _, unattended, decided = qm.finops(ws, load_policy({}, source="test"))
    bumped = [w for w in ws if decided.get(f"memory/{w.name}", "").startswith("oom-bump")]
    assert bumped and all(", held" not in decided[f"memory/{w.name}"] for w in bumped)
    assert all(unattended[w.name].memory_limit > w.memory_limit for w in bumped)
