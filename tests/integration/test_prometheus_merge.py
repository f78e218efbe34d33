"""Pure rules of the live scan (no server): bucket statistics, replicas, expected points, owners, answers."""
from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from finops_operator.errors import ConfigError, DataSourceError
from finops_operator.models import Window, WorkloadRef
from finops_operator.sources import promql
from finops_operator.sources.prombuckets import (BucketGrid, expected_counts, merge, parse_buckets, pod_stats,
                                                 pod_usage)
from finops_operator.sources.promstats import Owners, parse_bundle


def window(hours: int = 6, step: int = 60) -> Window:
    end = datetime(2026, 11, 30, 12, tzinfo=UTC)
    return Window(end - timedelta(hours=hours), end, step)


def row(values: np.ndarray, per_bucket: int) -> dict[str, np.ndarray]:
    """The raw-memory statistics of one pod container as a bucket answer holds them (NaN = absent)."""
    parts = values.reshape(-1, per_bucket)
    alive = ~np.isnan(parts)
    count = alive.sum(axis=1).astype(float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {"count": np.where(count > 0, count, np.nan), "mean": np.nanmean(parts, axis=1),
                "max": np.nanmax(parts, axis=1), "std": np.nanstd(parts, axis=1),
                "q95": np.nanpercentile(parts, 95, axis=1)}


def test_pod_stats_pool_buckets_exactly_and_take_exact_window_quantiles():
    w = window()
    grid = BucketGrid.of(w)
    assert grid.bucket_s == 5400 and len(grid.ends) == 4 and grid.ends[-1] == int(w.end.timestamp())
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.uniform(0, 1, 100), rng.uniform(2, 5, 140), np.full(120, np.nan)])
    r = row(values, 90)
    expected = expected_counts({("n", "p", "c"): r}, w, 60)
    assert list(expected) == [90, 90, 90, 90]
    stats = pod_stats(r, grid, expected, {95: 4.2}, (95,))
    seen = values[~np.isnan(values)]
    assert stats.samples == 240 and stats.mean == pytest.approx(seen.mean())
    assert stats.std == pytest.approx(seen.std())
    assert stats.max == seen.max() and stats.quantiles == {95: 4.2}          # the window's exact quantile as given
    assert list(stats.bucket_samples) == [90, 90, 60, 0] and np.isnan(stats.bucket_mean[3])
    assert stats.first == int(grid.ends[0]) - 5400                          # a full first bucket: from its start
    assert pod_stats({"count": np.zeros(4)}, grid, expected, {}, (95,)) is None


def test_raw_cpu_mean_is_the_rate_while_the_pod_ran_and_first_seen_prefers_kube_state_metrics():
    w = window()
    grid = BucketGrid.of(w)
    expected = np.full(4, 90.0)
    raw = {"count": np.array([np.nan, 45, 90, 90]), "rate": np.array([np.nan, 0.5, 1.0, 1.0]),
           "max": np.array([np.nan, 1.5, 2.0, 1.1]), "std": np.zeros(4), "q95": np.array([np.nan, 1.2, 1.9, 1.0])}
    stats = pod_stats(raw, grid, expected, {}, (95,))
    assert list(stats.bucket_mean[1:]) == [1.0, 1.0, 1.0]       # 0.5 over the bucket = 1.0 over the half it ran
    assert stats.quantiles == {95: 1.9}                          # no window answer: the largest bucket quantile
    assert stats.first == int(grid.ends[1]) - 2700               # half the bucket before its end
    assert pod_stats(raw, grid, expected, {}, (95,), created=1234.0).first == 1234
    node = pod_usage({("n", "p", "c"): raw}, expected)[("n", "p")]
    assert list(node[1:]) == [0.5, 1.0, 1.0]                     # a node carries the pod for half the bucket


def test_replicas_merge_to_the_worst_with_capped_coverage():
    w = window()
    grid = BucketGrid.of(w)
    expected = np.full(4, 90.0)
    old = pod_stats(row(np.concatenate([np.full(180, 1.0), np.full(180, np.nan)]), 90), grid, expected, {}, (95,))
    new = pod_stats(row(np.concatenate([np.full(180, np.nan), np.full(180, 2.0)]), 90), grid, expected, {}, (95,))
    twin = pod_stats(row(np.full(360, 0.5), 90), grid, expected, {}, (95,))
    rollout = merge([old, new], grid, expected)
    assert rollout.samples == rollout.expected == 360 and rollout.max == 2.0 and rollout.days.ends == tuple(grid.ends)
    side = merge([twin, twin, twin], grid, expected)
    assert side.samples == 360 and side.coverage == 1.0
    assert merge([], grid, expected) is None


def test_a_first_bucket_before_the_window_start_expects_only_the_points_inside():
    w = window(hours=5, step=60)
    w = Window(w.start - timedelta(minutes=30), w.end, 60)    # 5.5 h: 5 buckets of 4920 s, the first 120 s inside
    grid = BucketGrid.of(w)
    assert grid.bucket_s == 4920 and len(grid.ends) == 5
    counts = {("n", "p", "c"): {"count": np.array([3.0, 82, 82, 82, 82])}}
    assert list(expected_counts(counts, w, 60)) == [3, 82, 82, 82, 82]
    assert list(expected_counts({}, w, 60)) == [3, 82, 82, 82, 82]        # no data: the configured interval


def test_points_off_the_bucket_grid_are_a_data_source_error():
    grid = BucketGrid.of(window())
    answer = [{"metric": {"namespace": "n", "pod": "p", "container": "c", "stat": "max"},
               "values": [[int(grid.ends[0]) + 7, "1"]]}]
    with pytest.raises(DataSourceError, match="off the bucket grid"):
        parse_buckets(answer, grid, source="http://prom", what="memory statistics")
    answer[0]["values"] = [[int(grid.ends[1]), "2"]]
    parsed = parse_buckets(answer, grid, source="x", what="y")[("n", "p", "c")]["max"]
    assert np.isnan(parsed[0]) and parsed[1] == 2.0


def test_owners_resolve_rollouts_cronjobs_and_orphans():
    owners = Owners()
    owners.add({"pod": [({"namespace": "n", "pod": "api-1-a", "owner_kind": "ReplicaSet", "owner_name": "api-1"}, 1),
                        ({"namespace": "n", "pod": "api-2-b", "owner_kind": "ReplicaSet", "owner_name": "api-2"}, 1),
                        ({"namespace": "n", "pod": "rep-9-x", "owner_kind": "Job", "owner_name": "rep-9"}, 1),
                        ({"namespace": "n", "pod": "bare", "owner_kind": "<none>", "owner_name": "<none>"}, 1)],
                "rs": [({"namespace": "n", "replicaset": "api-1", "owner_kind": "Deployment", "owner_name": "api"}, 1),
                       ({"namespace": "n", "replicaset": "api-2", "owner_kind": "Deployment", "owner_name": "api"}, 1)],
                "job": [({"namespace": "n", "job_name": "rep-9", "owner_kind": "CronJob", "owner_name": "rep"}, 1)]})
    assert owners.workload_of("n", "api-1-a") == owners.workload_of("n", "api-2-b") == WorkloadRef("Deployment", "n", "api")
    assert owners.workload_of("n", "rep-9-x") == WorkloadRef("CronJob", "n", "rep")
    assert owners.workload_of("n", "bare") == WorkloadRef("Pod", "n", "bare")
    assert owners.workload_of("n", "unknown") == WorkloadRef("Pod", "n", "unknown")


def test_scope_and_matchers_are_checked():
    with pytest.raises(ConfigError):
        promql.Scope(namespaces="(")
    with pytest.raises(ConfigError):
        promql.Scope(matchers=("cluster=eu",))
    assert promql.quote('a"b\\c') == '"a\\"b\\\\c"'
    assert promql.open_range(300) == "299999ms"


def test_malformed_answer_is_a_data_source_error():
    with pytest.raises(DataSourceError) as err:
        parse_bundle([{"metric": {}}], source="http://prom")
    assert "http://prom" in str(err.value)
    assert parse_bundle([{"metric": {"stat": "max"}, "value": [0, "NaN"]}], source="x") == {}


def test_every_percentile_from_50_to_100_survives_the_assembly():
    w = window()
    grid = BucketGrid.of(w)
    expected = np.full(4, 90.0)
    every = tuple(range(50, 100))
    rng = np.random.default_rng(5)
    pods = []
    for scale in (1.0, 2.0):                               # two replicas: the worse one wins every figure
        values = rng.uniform(0, scale, 360)
        r = row(values, 90)
        r.update({f"q{q}": np.percentile(values.reshape(4, 90), q, axis=1) for q in every})
        exact = {q: float(np.percentile(values, q)) for q in every}
        pods.append((pod_stats(r, grid, expected, exact, every), exact, values))
    merged = merge([p for p, _, _ in pods], grid, expected)
    for q in every:
        assert merged.percentile(q) == max(exact[q] for _, exact, _ in pods)
        assert merged.days.quantiles[q] == tuple(np.maximum(*(np.percentile(v.reshape(4, 90), q, axis=1)
                                                               for _, _, v in pods)))
    assert merged.percentile(100) == max(v.max() for _, _, v in pods)
