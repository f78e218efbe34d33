"""PrometheusSource against Debian's prometheus, backfilled with a known history.

The scan's buckets are end-aligned and cover (start, end] of the window, so
the figures are those of samples 1..360 of the 361 generated (the start
sample belongs to the bucket before).

Tolerances. Memory is a gauge read raw, so its figures must match the
generated samples to float precision (quantiles interpolate like numpy's).
CPU comes from ``rate(container_cpu_usage_seconds_total[2m])`` at a 60 s step
over samples every 60 s: with samples on the window edges rate() needs no
extrapolation and equals the mean of the last two per-minute rates, which
``rate_truth`` computes from the generated values. The only step it cannot
reproduce is the window's first, where rate() extrapolates from two points,
and the per-bucket mean is the counter's increase over a bucket (one interval
of 90 less), so CPU figures are compared within 1%.
"""
from __future__ import annotations

import math
import numpy as np
import pytest

from finops_operator.errors import ConfigError, DataSourceError
from finops_operator.models import ContainerKey, WorkloadRef
from finops_operator.sources.prometheus import PrometheusSource
from finops_operator.sources.promql import Scope
from tests.support.prom_history import rate_truth
from tests.support.prom_requests import scan_requests

pytestmark = pytest.mark.integration

CPU_TOL = 0.01
PERCENTILES = {"cpu": (50, 73, 95, 99), "memory": (50, 88, 97, 99)}    # representative; test_promusage covers 50..99
# a narrower scope (node usage needs every pod's means); raw CPU over remote read (a small history)
REQUESTS = scan_requests(PERCENTILES, node_query=True, remote=True)


def key(kind: str, ns: str, name: str, container: str) -> ContainerKey:
    return ContainerKey(WorkloadRef(kind, ns, name), container)


def truth(values: np.ndarray, percentiles: tuple[int, ...]) -> dict[int | str, float]:
    values = values[1:]
    values = values[~np.isnan(values)]
    out: dict[int | str, float] = {q: float(np.percentile(values, q)) for q in percentiles}
    return out | {"max": float(values.max()), "mean": float(values.mean()), "std": float(values.std())}


def figure(stats, stat: int | str) -> float:
    return stats.percentile(stat) if isinstance(stat, int) else getattr(stats, stat)


@pytest.fixture(scope="module")
def small(prometheus_history):
    source = PrometheusSource(prometheus_history.url)
    return source.collect(Scope(namespaces="small"), prometheus_history.window(), percentiles=PERCENTILES)


def test_queried_figures_match_generated_for_any_percentile(prometheus_history, small):
    for pod, container, ref in (("web-6b7c9-x2x4q", "app", key("Deployment", "small", "web", "app")),
                                ("web-6b7c9-x2x4q", "proxy", key("Deployment", "small", "web", "proxy")),
                                ("db-0", "postgres", key("StatefulSet", "small", "db", "postgres"))):
        sim = prometheus_history.container("small", pod, container)
        got = small.usage[ref]
        for stat, value in truth(sim.memory, PERCENTILES["memory"]).items():
            assert figure(got.memory, stat) == pytest.approx(value, rel=1e-9), (ref, "memory", stat)
        for stat, value in truth(rate_truth(sim.cpu, 2), PERCENTILES["cpu"]).items():
            assert figure(got.cpu, stat) == pytest.approx(value, rel=CPU_TOL), (ref, "cpu", stat)
        assert got.memory.samples == got.memory.expected == 360
        assert got.cpu.coverage > 0.99
        assert sorted(got.cpu.quantiles) == list(PERCENTILES["cpu"])
        days = got.memory.days
        assert days is not None and len(days.ends) == 4 and days.ends[-1] == prometheus_history.history.end
        assert sum(days.samples) == 360 and max(days.max) == got.memory.max
        for i, end in enumerate(days.ends):        # each bucket is (end - bucket, end]
            inside = sim.memory[(prometheus_history.history.times() > end - days.bucket_seconds)
                                & (prometheus_history.history.times() <= end)]
            assert days.mean[i] == pytest.approx(float(inside.mean()), rel=1e-9)
            assert days.quantiles[97][i] == pytest.approx(float(np.percentile(inside, 97)), rel=1e-9)
    assert set(small.usage) == {key("Deployment", "small", "web", "app"), key("Deployment", "small", "web", "proxy"),
                                key("StatefulSet", "small", "db", "postgres")}
    assert small.rules is False and small.queries == REQUESTS


def test_requests_limits_and_nodes(prometheus_history, small):
    db = small.containers[key("StatefulSet", "small", "db", "postgres")]
    assert db.resources.cpu_request == 2.0 and db.resources.cpu_limit is None
    assert db.resources.memory_request == db.resources.memory_limit == 2048 * 2**20
    assert db.restarts == 0 and db.oom_kills == 0
    node = small.nodes["node-a"]
    assert node.allocatable_cpu == 4.0 and node.allocatable_memory == 16 * 2**30
    assert node.labels["topology_kubernetes_io_zone"] == "eu-west-1a"
    # node usage covers every namespace on the node, not only the scope
    assert node.cpu.mean > small.usage[key("Deployment", "small", "web", "app")].cpu.mean
    assert set(small.nodes) == {"node-a", "node-b", "node-c", "node-d"}
    # node-c runs the 50 "large" containers: its memory is the sum of their means, per bucket
    on_c = np.nansum([c.memory for c in prometheus_history.history.containers if c.node == "node-c"], axis=0)
    buckets = on_c[1:].reshape(4, 90).mean(axis=1)
    assert small.nodes["node-c"].memory.mean == pytest.approx(float(buckets.mean()), rel=1e-9)
    assert small.nodes["node-c"].memory.max == pytest.approx(float(buckets.max()), rel=1e-9)
    assert small.nodes["node-c"].memory.samples == small.nodes["node-c"].memory.expected == 4


def test_request_count_does_not_grow_with_containers(prometheus_history, small):
    large = PrometheusSource(prometheus_history.url).collect(Scope(namespaces="large"), prometheus_history.window())
    everything = PrometheusSource(prometheus_history.url).collect(Scope(), prometheus_history.window())
    assert len(small.usage) == 3 and len(large.usage) == 50 and len(everything.usage) == 60
    assert small.queries == REQUESTS                           # the same with 3 or 50 containers
    assert large.queries == scan_requests(node_query=True, remote=True) < REQUESTS   # the default percentiles
    assert everything.queries == scan_requests(node_query=False, remote=True)   # node usage from its buckets
    for name in ("node-a", "node-c"):
        assert everything.nodes[name].memory.mean == pytest.approx(small.nodes[name].memory.mean, rel=1e-9)
        assert everything.nodes[name].cpu.mean == pytest.approx(small.nodes[name].cpu.mean, rel=CPU_TOL)


def test_rollout_pods_collapse_into_one_workload(prometheus_history):
    result = PrometheusSource(prometheus_history.url).collect(Scope(namespaces="roll"), prometheus_history.window())
    api = key("Deployment", "roll", "api", "api")
    assert api in result.usage
    assert not any(k.workload.kind == "ReplicaSet" for k in result.usage)
    pods = [c for c in prometheus_history.history.containers if c.pod.startswith("api-")]
    assert {result.pods[("roll", c.pod)] for c in pods} == {api.workload}
    usage = result.usage[api]
    # worst replica: the max over all four pods of two ReplicaSets
    assert usage.memory.max == pytest.approx(max(np.nanmax(c.memory) for c in pods), rel=1e-9)
    # one pod after another: the workload is covered all the time, not half of it
    assert usage.memory.coverage > 0.99
    assert key("CronJob", "roll", "report", "report") in result.usage
    assert key("DaemonSet", "roll", "agent", "agent") in result.usage
    hpa = result.hpas[api.workload]
    assert (hpa.min_replicas, hpa.max_replicas, hpa.target_cpu_utilization, hpa.current_replicas) == (2, 6, 70, 2)


def test_edge_cases_recent_gap_reset_and_crashes(prometheus_history):
    window = prometheus_history.window()
    result = PrometheusSource(prometheus_history.url).collect(Scope(namespaces="edge"), window)
    recent = result.usage[key("Deployment", "edge", "new", "app")]
    assert 0.05 < recent.cpu.coverage < 0.15 and 0.05 < recent.memory.coverage < 0.15
    created = prometheus_history.container("edge", "new-1a2b3-zzzzz", "app").created
    assert recent.memory.first_seen.timestamp() == recent.cpu.first_seen.timestamp() == created   # kube_pod_created
    gappy = result.usage[key("StatefulSet", "edge", "gappy", "app")]
    assert gappy.memory.coverage == pytest.approx(300 / 360)          # one hour of six missing
    first = gappy.memory.first_seen.timestamp()                      # no kube_pod_created: from the first bucket
    assert abs(first - window.start.timestamp()) <= 60
    reset_sim = prometheus_history.container("edge", "reset-0", "app")
    reset = result.usage[key("StatefulSet", "edge", "reset", "app")]
    assert reset.cpu.max == pytest.approx(truth(rate_truth(reset_sim.cpu, 2), ())["max"], rel=CPU_TOL)
    assert reset.cpu.max < 1.0                       # no spike from the counter reset
    crashy_key = key("StatefulSet", "edge", "crashy", "app")
    crashy = result.containers[crashy_key]
    assert crashy.restarts == 2 and crashy.oom_kills == 1 and crashy.last_terminated_reason == "OOMKilled"
    assert result.usage[crashy_key].cpu_throttled_ratio == pytest.approx(0.4, abs=0.01)


def test_a_scan_over_budget_is_refused_before_any_request(prometheus_history):
    # the budget is set before the probe, for the largest plan (no remote read)
    source = PrometheusSource(prometheus_history.url, max_requests=scan_requests(node_query=True) - 1)
    with pytest.raises(ConfigError, match="over the budget"):
        source.collect(Scope(namespaces="small"), prometheus_history.window())
    assert source.requests == 0


def test_require_without_rules_is_a_config_error_naming_the_fix(prometheus_history):
    source = PrometheusSource(prometheus_history.url, recording_rules="Require")
    with pytest.raises(ConfigError) as err:
        source.collect(Scope(namespaces="small"), prometheus_history.window())
    assert "prometheus-rules.yaml" in str(err.value) and err.value.field == "prometheus.recordingRules"
    assert source.requests == 1                       # only the probe


def test_scope_without_data_is_an_error_not_empty_usage(prometheus_history):
    with pytest.raises(DataSourceError) as err:
        PrometheusSource(prometheus_history.url).collect(Scope(namespaces="nothing-here"), prometheus_history.window())
    assert prometheus_history.url in str(err.value) and "nothing-here" in str(err.value)


def test_bad_query_is_rejected_with_the_server_message(prometheus_history):
    source = PrometheusSource(prometheus_history.url)
    with pytest.raises(DataSourceError) as err:
        source.query("sum(", at=prometheus_history.history.end)
    assert "query rejected" in str(err.value) and "400" in str(err.value)
    assert source.requests == 1          # a rejected query is not retried


def test_down_server_names_the_url(down_prometheus_url, prometheus_history):
    source = PrometheusSource(down_prometheus_url, retries=3, backoff=0.01)
    with pytest.raises(DataSourceError) as err:
        source.collect(Scope(namespaces="small"), prometheus_history.window())
    text = str(err.value)
    assert down_prometheus_url in text and "cannot connect" in text and "after 3 attempts" in text
    assert source.requests == 3


def test_slow_server_times_out_after_retries(silent_prometheus, prometheus_history):
    source = PrometheusSource(silent_prometheus.url, timeout=0.5, retries=2, backoff=0.01)
    with pytest.raises(DataSourceError) as err:
        source.collect(Scope(namespaces="small"), prometheus_history.window())
    text = str(err.value)
    assert silent_prometheus.url in text and "timeout" in text and "after 2 attempts" in text
    assert silent_prometheus.accepted == 2
    assert not math.isnan(source.requests) and source.requests == 2


def test_bearer_token_and_tenant_header_reach_the_server(prometheus_history):
    from tests.support.prometheus_server import AuthProxy
    gateway = AuthProxy(prometheus_history.url, {"Authorization": "Bearer s3cret", "X-Scope-OrgID": "team-a"})
    try:
        anonymous = PrometheusSource(gateway.url, retries=3, backoff=0.01)
        with pytest.raises(DataSourceError) as err:
            anonymous.collect(Scope(namespaces="small"), prometheus_history.window())
        assert "401" in str(err.value) and anonymous.requests == 1      # refused, not retried
        source = PrometheusSource(gateway.url, bearer_token="s3cret", headers={"X-Scope-OrgID": "team-a"})
        result = source.collect(Scope(namespaces="small"), prometheus_history.window())
        assert len(result.usage) == 3 and len(gateway.seen) == 1 + result.queries
        posted = [seen for seen in gateway.seen if seen[":method"] == "POST"]        # the remote read, with them
        assert len(posted) == 1 and posted[0]["X-Scope-OrgID"] == "team-a" and source.remote_read_served
        assert "s3cret" not in str(err.value)
    finally:
        gateway.close()


def test_a_server_without_remote_read_gets_the_subqueries(prometheus_history, small):
    """A backend that does not serve /api/v1/read (Thanos Query, VictoriaMetrics: 404) costs one refused
    request, once per source: the CPU statistics then come from the subqueries, the same figures."""
    from tests.support.prometheus_server import AuthProxy
    gateway = AuthProxy(prometheus_history.url, {}, remote_read=False)
    try:
        source = PrometheusSource(gateway.url)
        first = source.collect(Scope(namespaces="small"), prometheus_history.window(), percentiles=PERCENTILES)
        again = source.collect(Scope(namespaces="small"), prometheus_history.window(), percentiles=PERCENTILES)
    finally:
        gateway.close()
    assert source.remote_read_served is False
    assert first.queries == scan_requests(PERCENTILES, node_query=True) + 1      # the refused remote read
    assert again.queries == scan_requests(PERCENTILES, node_query=True)          # not tried again
    assert [seen[":path"] for seen in gateway.seen if seen[":method"] == "POST"] == ["/api/v1/read"]
    assert set(first.usage) == set(small.usage)
    for key, got in first.usage.items():
        want = small.usage[key].cpu                                       # read over remote read
        for q in (*PERCENTILES["cpu"], 100):
            assert got.cpu.percentile(q) == pytest.approx(want.percentile(q), rel=1e-9), (key, q)
        assert got.cpu.std == pytest.approx(want.std, rel=1e-9), key
