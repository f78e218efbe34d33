"""Pure merge rules of the Prometheus adapter (no server): chunks, replicas, owners, query shape."""
from __future__ import annotations

import numpy as np
import pytest

from finops_operator.errors import ConfigError, DataSourceError
from finops_operator.models import WorkloadRef
from finops_operator.sources import promql
from finops_operator.sources.promstats import Owners, combine_chunks, covered_steps, merge_replicas, parse_bundle


def stats(values: np.ndarray, t0: int, step: int = 60) -> dict[str, float]:
    return {"count": len(values), "mean": float(values.mean()), "std": float(values.std()), "max": float(values.max()),
            "p95": float(np.percentile(values, 95)), "first": t0, "last": t0 + step * (len(values) - 1)}


def test_chunks_merge_exactly_except_quantiles_which_are_an_upper_bound():
    rng = np.random.default_rng(3)
    whole = np.concatenate([rng.uniform(0, 1, 100), rng.uniform(2, 5, 50), rng.uniform(0, 3, 70)])
    parts = [whole[:100], whole[100:150], whole[150:]]
    merged = combine_chunks([stats(p, 60 * i) for i, p in zip((0, 100, 150), parts)])
    assert merged["count"] == len(whole)
    assert merged["mean"] == pytest.approx(whole.mean()) and merged["std"] == pytest.approx(whole.std())
    assert merged["max"] == whole.max() and merged["first"] == 0 and merged["last"] == 60 * 219
    assert np.percentile(whole, 95) <= merged["p95"] <= whole.max()
    assert combine_chunks([{"count": 0}]) == {}


def test_replicas_in_sequence_cover_the_window_and_side_by_side_do_not_count_twice():
    rollout = [{"count": 50, "first": 0, "last": 49 * 60, "max": 1.0, "p95": 0.9},
               {"count": 50, "first": 50 * 60, "last": 99 * 60, "max": 2.0, "p95": 0.5}]
    merged = merge_replicas(rollout, expected=100, step_s=60)
    assert merged.samples == 100 and merged.max == 2.0 and merged.quantiles == {95: 0.9}     # worst replica per figure
    side = [{"count": 10, "first": 90 * 60, "last": 99 * 60}] * 3
    assert merge_replicas(side, expected=100, step_s=60).samples == 10
    assert merge_replicas([], expected=100, step_s=60) is None
    assert covered_steps([(0, 600), (300, 900), (1200, 1200)], 60) == 17


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


def test_queries_are_batched_by_scope_not_by_container():
    scope = promql.Scope(namespaces="shop|pay", exclude_namespaces="kube-.*", matchers=('cluster="eu"',))
    cpu = promql.cpu_usage_stats(scope, 3600, 60, 120)
    assert "by (namespace, pod, container)" in cpu and 'namespace=~"shop|pay"' in cpu
    assert 'namespace!~"kube-.*"' in cpu and 'cluster="eu"' in cpu and "[3600s:60s]" in cpu
    assert cpu.count('"stat"') == 10 and "pod=" not in cpu
    with pytest.raises(ConfigError):
        promql.Scope(namespaces="(")
    with pytest.raises(ConfigError):
        promql.Scope(matchers=("cluster=eu",))
    assert promql.quote('a"b\\c') == '"a\\"b\\\\c"'


def test_malformed_answer_is_a_data_source_error():
    with pytest.raises(DataSourceError) as err:
        parse_bundle([{"metric": {}}], source="http://prom")
    assert "http://prom" in str(err.value)
    assert parse_bundle([{"metric": {"stat": "max"}, "value": [0, "NaN"]}], source="x") == {}
