"""The shipped recording rules, recorded over a test history by promtool, read by a scan: detected by the
probe, no subquery sent, the same request count, and the same statistics as the raw series.

Tolerances (also in the README). The history is smooth usage (an 8-hour wave with 5% noise per minute, slow enough that
the rule group's phase, which depends on the rules file's path, moves no figure beyond the tolerances); the
scans read at a 300 s step with a 300 s rate window, the rules' interval and window. The rules' samples are
evaluated at the rule group's own phase (Prometheus offsets a group's evaluations by a hash of its name:
here 7 s before the 5-minute grid), so they are 5-minute rates on a slightly shifted grid: CPU max,
quantiles and means agree within 1.5%, per-bucket means within 5% (1.5-hour buckets) and the std within 6%; coverage within one
sample either way. The CronJob's container, whose one pod ran an hour (12 recorded samples, so each edge
rate or 5-minute maximum weighs 1/12), is compared on its CPU quantiles only, within 10%.
Memory differs by construction: the rule records the max of each 5 minutes where the raw path reads every
sample, so the max is the same, and the rules' quantiles and mean are upper bounds of the raw ones (never
above the max), within 8% on this history.
"""
from __future__ import annotations

import numpy as np
import pytest

from finops_operator.sources.prometheus import PrometheusSource
from finops_operator.sources.promql import Scope
from tests.support.prom_requests import scan_requests

pytestmark = pytest.mark.integration
STEP = 300
CPU_TOL, CPU_STD_TOL, BUCKET_TOL, MEMORY_TOL = 0.015, 0.06, 0.05, 0.08
SHORT_TOL = 0.10       # the CronJob report's container: its one pod ran one hour (edge rates weigh 1/12 each)
PERCENTILES = {"cpu": (50, 90, 95, 99), "memory": (50, 90, 99)}


class Recorder:
    """Wraps the source's query methods to keep every expression sent."""

    def __init__(self, source: PrometheusSource):
        self.exprs: list[str] = []
        for name in ("query", "query_range"):
            send = getattr(source, name)
            setattr(source, name, lambda expr, *a, send=send, **k: (self.exprs.append(expr), send(expr, *a, **k))[1])


def scan(url: str, window, mode: str, namespaces: str = "small|roll", remote_read: str = "Off"):
    source = PrometheusSource(url, recording_rules=mode, scrape_interval=60, remote_read=remote_read)
    sent = Recorder(source)
    result = source.collect(Scope(namespaces=namespaces), window, percentiles=PERCENTILES, rate_window_s=STEP)
    return result, sent.exprs


@pytest.fixture(scope="module")
def both(prometheus_rules_history):
    window = prometheus_rules_history.window(STEP)
    return scan(prometheus_rules_history.url, window, "Auto"), scan(prometheus_rules_history.url, window, "Off")


def test_rules_are_detected_and_need_no_subquery(both):
    (rules, sent_rules), (raw, sent_raw) = both
    assert rules.rules is True and raw.rules is False
    # a scope narrower than the cluster: node usage from every pod's per-bucket sums (4 parts with rules, 3 raw)
    assert rules.queries == len(sent_rules) == scan_requests(PERCENTILES, node_query=True, rules=True)
    assert raw.queries == len(sent_raw) == scan_requests(PERCENTILES, node_query=True)
    usage = [e for e in sent_rules if "finops_container" in e]
    assert len(usage) >= 3 and not any(":300s]" in e for e in sent_rules)
    # raw CPU: one subquery evaluation per statistic (bucket max, std and quantiles; the window quantiles)
    assert sum(e.count(":300s]") for e in sent_raw) == 2 + 2 * len(PERCENTILES["cpu"])


def test_rules_and_raw_series_give_the_same_statistics(both):
    (rules, _), (raw, _) = both
    assert set(rules.usage) == set(raw.usage) and len(rules.usage) == 6
    for key, got in rules.usage.items():
        want = raw.usage[key]
        for got_r, want_r in ((got.cpu, want.cpu), (got.memory, want.memory)):   # one edge sample either way
            assert got_r.coverage == pytest.approx(want_r.coverage, abs=1 / got_r.expected + 1e-9), key
        if key.workload.kind == "CronJob":
            # its one pod ran an hour (12 recorded samples): the edge rates and 5-minute maxima, whose
            # phase depends on the rules file's path, weigh 1/12 each; compared on CPU quantiles only
            for q in (*PERCENTILES["cpu"], 100):
                assert got.cpu.percentile(q) == pytest.approx(want.cpu.percentile(q), rel=SHORT_TOL), (key, q)
            continue
        tol = CPU_TOL
        for q in (*PERCENTILES["cpu"], 100):
            assert got.cpu.percentile(q) == pytest.approx(want.cpu.percentile(q), rel=tol), (key, q)
        assert got.cpu.mean == pytest.approx(want.cpu.mean, rel=tol), key
        assert got.cpu.std == pytest.approx(want.cpu.std, rel=CPU_STD_TOL), key
        assert np.allclose(got.cpu.days.mean, want.cpu.days.mean, rtol=BUCKET_TOL, equal_nan=True), key
        assert got.memory.max == pytest.approx(want.memory.max, rel=1e-9), key
        for q in PERCENTILES["memory"]:
            assert want.memory.percentile(q) * (1 - 1e-9) <= got.memory.percentile(q) <= got.memory.max, (key, q)
            assert got.memory.percentile(q) <= want.memory.percentile(q) * (1 + MEMORY_TOL), (key, q)
        assert want.memory.mean <= got.memory.mean <= want.memory.mean * (1 + MEMORY_TOL), key
    for name, node in raw.nodes.items():
        if node.memory is not None:
            assert rules.nodes[name].memory.mean == pytest.approx(node.memory.mean, rel=MEMORY_TOL), name
            assert rules.nodes[name].cpu.mean == pytest.approx(node.cpu.mean, rel=BUCKET_TOL), name   # holds the CronJob pod


def test_require_reads_the_rules_and_off_ignores_them(prometheus_rules_history):
    window = prometheus_rules_history.window(STEP)
    required, _ = scan(prometheus_rules_history.url, window, "Require", "small")
    assert required.rules is True and len(required.usage) == 3


def test_raw_cpu_over_remote_read_equals_the_subqueries(prometheus_rules_history, both):
    """The raw CPU statistics computed from remote-read samples (Prometheus 2.x rate() on the client) are the
    subqueries' to float precision, for steady, rolled-over and one-hour pods alike, in fewer requests."""
    _, (raw, _) = both
    window = prometheus_rules_history.window(STEP)
    remote, sent = scan(prometheus_rules_history.url, window, "Off", remote_read="Auto")
    assert not any(":300s]" in e for e in sent) and remote.queries < raw.queries
    assert set(remote.usage) == set(raw.usage)
    for key, got in remote.usage.items():
        want = raw.usage[key].cpu
        for q in (*PERCENTILES["cpu"], 100):
            assert got.cpu.percentile(q) == pytest.approx(want.percentile(q), rel=1e-9), (key, q)
        assert (got.cpu.samples, got.cpu.expected) == (want.samples, want.expected), key
        assert got.cpu.std == pytest.approx(want.std, rel=1e-9) and got.cpu.mean == pytest.approx(want.mean, rel=1e-9)
        for field in ("max", "mean", "samples"):
            assert np.allclose(getattr(got.cpu.days, field), getattr(want.days, field), rtol=1e-9, atol=1e-12,
                               equal_nan=True), (key, field)
        for q in PERCENTILES["cpu"]:
            assert np.allclose(got.cpu.days.quantiles[q], want.days.quantiles[q], rtol=1e-9, atol=1e-12,
                               equal_nan=True), (key, q)


def test_recorded_series_over_remote_read_equal_their_queries(prometheus_rules_history, both):
    """With the recording rules, every statistic of both resources can come from one remote read of each
    recorded series (computed in the operator) instead of five range and one instant query each: the same
    figures to float precision, in fewer requests."""
    (rules, _), _ = both
    window = prometheus_rules_history.window(STEP)
    remote, sent = scan(prometheus_rules_history.url, window, "Auto", remote_read="Auto")
    assert remote.rules is True      # no statistic is a query any more (node usage still sums the pods' buckets)
    assert not any(f in e for e in sent for f in ("quantile_over_time", "stddev_over_time", "avg_over_time"))
    assert remote.queries == scan_requests(PERCENTILES, node_query=True, rules=True, remote=True) < rules.queries
    assert set(remote.usage) == set(rules.usage)
    for key, got in remote.usage.items():
        want = rules.usage[key]
        for name in ("cpu", "memory"):
            a, b = getattr(got, name), getattr(want, name)
            for q in (*PERCENTILES[name], 100):
                assert a.percentile(q) == pytest.approx(b.percentile(q), rel=1e-9), (key, name, q)
            assert (a.samples, a.expected) == (b.samples, b.expected), (key, name)
            assert a.mean == pytest.approx(b.mean, rel=1e-9) and a.std == pytest.approx(b.std, rel=1e-9), (key, name)
            for field in ("max", "mean", "samples"):
                assert np.allclose(getattr(a.days, field), getattr(b.days, field), rtol=1e-9, atol=1e-12,
                                   equal_nan=True), (key, name, field)
            for q in PERCENTILES[name]:
                assert np.allclose(a.days.quantiles[q], b.days.quantiles[q], rtol=1e-9, atol=1e-12,
                                   equal_nan=True), (key, name, q)
