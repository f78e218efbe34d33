"""The live scan's vectorised assembly gives the per-pod figures of the per-pod formulas, to the bit.

The references below are the per-pod implementations the vectorised code replaced (one pod container
at a time, numpy on 1-D arrays); random rows cover rate and mean rows, missing statistics, empty
buckets, pods without samples and known creation times.
"""
from __future__ import annotations

import gc
import math
import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from finops_operator.errors import DataSourceError
from finops_operator.models import Window
from finops_operator.sources.prombuckets import BucketGrid, parse_buckets, pod_stats_many, pod_usage, sum_groups
from finops_operator.sources.promscan import gc_paused

GRID = BucketGrid.of(Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC), 300))


def reference_pod_stats(row, grid, expected, window_q, quantiles, created=None):
    size = len(grid.ends)
    count = np.nan_to_num(row.get("count", np.zeros(size)))
    has = (count > 0) & ~np.isnan(row.get("mean", row.get("rate", np.full(size, np.nan))))
    if not has.any():
        return None
    mean = row["rate"] * np.minimum(expected / np.maximum(count, 1), 1e6) if "rate" in row else row["mean"]
    mean = np.where(has, mean, np.nan)
    peak = np.where(has, row.get("max", mean), np.nan)
    samples = np.where(has, np.minimum(count, expected), 0).astype(np.int64)
    weight = np.where(has, count, 0.0)
    total = float(weight.sum())
    window_mean = float(np.nansum(mean * weight) / total)
    std = np.nan_to_num(row.get("std", np.zeros(size)))
    variance = float(np.nansum(weight * (std ** 2 + (mean - window_mean) ** 2)) / total)
    bucket_q = {q: np.where(has, row.get(f"q{q}", peak), np.nan) for q in quantiles}
    exact = {q: window_q[q] if q in window_q else float(np.nanmax(bucket_q[q])) for q in quantiles}
    first = int(np.argmax(has))
    seen = created if created is not None and not math.isnan(created) else \
        float(grid.ends[first]) - grid.bucket_s * min(1.0, samples[first] / max(expected[first], 1.0))
    return dict(samples=int(samples.sum()), quantiles=exact, max=float(np.nanmax(peak)), mean=window_mean,
                std=math.sqrt(max(variance, 0.0)), first=int(seen), bucket_samples=samples, bucket_mean=mean,
                bucket_max=peak, bucket_quantiles=bucket_q)


def random_rows(rng: np.random.Generator, n: int) -> list[dict[str, np.ndarray]]:
    size = len(GRID.ends)
    rows = []
    for _ in range(n):
        alive = rng.random(size) < rng.choice([0.0, 0.3, 1.0])
        count = np.where(alive, rng.integers(1, 2017, size).astype(float), np.nan)
        row = {"count": count} if rng.random() < 0.95 else {}
        level = np.where(alive, rng.gamma(2.0, 0.3, size), np.nan)
        row["rate" if rng.random() < 0.5 else "mean"] = level
        for stat in ("max", "std", "q90", "q99"):
            if rng.random() < 0.85:
                row[stat] = np.where(alive & (rng.random(size) < 0.95), level * (1 + rng.random(size)), np.nan)
        rows.append(row)
    return rows


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")      # the reference's nanmax of a NaN bucket row
def test_every_pods_figures_equal_the_per_pod_formulas_bit_for_bit():
    rng = np.random.default_rng(13)
    rows = random_rows(rng, 400)
    expected = rng.integers(1, 2017, len(GRID.ends)).astype(float)
    window_q = [{90: 1.5} if i % 3 == 0 else {} for i in range(len(rows))]
    created = [[None, float("nan"), 1.7e9][i % 3] for i in range(len(rows))]
    got = pod_stats_many(rows, GRID, expected, window_q, (90, 99), created)
    assert sum(g is None for g in got) > 10 and sum(g is not None for g in got) > 100
    for row, q, made, stats in zip(rows, window_q, created, got):
        want = reference_pod_stats(row, GRID, expected, q, (90, 99), made)
        if want is None:
            assert stats is None
            continue
        for name, value in want.items():
            have = getattr(stats, name)
            if name == "bucket_quantiles" or name == "quantiles":
                assert set(have) == set(value)
                for k in value:
                    np.testing.assert_array_equal(have[k], value[k])
            else:
                np.testing.assert_array_equal(have, value)


def reference_pod_usage(buckets, expected):
    out = {}
    for (namespace, pod, *_), row in buckets.items():
        if "rate" in row:
            used = row["rate"]
        elif "mean" in row:
            used = row["mean"] * np.nan_to_num(row.get("count", np.zeros(len(expected)))) / expected
        else:
            used = row.get("cpu_rate", row.get("cpu_sum", row.get("memory_sum")))
            if used is None:
                continue
            used = used if "cpu_rate" in row else used / expected
        base = out.get((namespace, pod))
        out[(namespace, pod)] = used if base is None else np.where(np.isnan(base), used, base + np.nan_to_num(used))
    return out


def test_pod_usage_sums_containers_in_order_like_the_per_pod_loop():
    rng = np.random.default_rng(7)
    rows = random_rows(rng, 300)
    for i, row in enumerate(rows[::7]):
        row.clear()
        row[["cpu_rate", "cpu_sum", "memory_sum", "none"][i % 4]] = rng.random(len(GRID.ends))
    buckets = {("ns", f"pod-{i // 3}", f"c{i % 3}"): row for i, row in enumerate(rows)}
    expected = rng.integers(1, 289, len(GRID.ends)).astype(float)
    got, want = pod_usage(buckets, expected), reference_pod_usage(buckets, expected)
    assert list(got) == list(want)
    for pod in want:
        np.testing.assert_array_equal(got[pod], want[pod])


def test_sum_groups_is_nan_where_a_group_has_no_number():
    values = np.array([[1.0, np.nan], [2.0, np.nan], [np.nan, 5.0]])
    np.testing.assert_array_equal(sum_groups(values, [0, 0, 1], 3),
                                  [[3.0, np.nan], [np.nan, 5.0], [np.nan, np.nan]])


def test_parse_buckets_places_points_and_keeps_only_statistics_with_a_point():
    ends = [int(e) for e in GRID.ends]
    answer = [{"metric": {"namespace": "n", "pod": "p", "container": "c", "stat": "max"},
               "values": [[ends[0], "1.5"], [ends[3], "NaN"]]},
              {"metric": {"namespace": "n", "pod": "p", "container": "c", "stat": "std"},
               "values": [[ends[1], "NaN"]]},
              {"metric": {"namespace": "n", "pod": "q", "container": "c", "stat": "max"}, "values": []}]
    parsed = parse_buckets(answer, GRID, source="s", what="w")
    assert list(parsed) == [("n", "p", "c")] and list(parsed[("n", "p", "c")]) == ["max"]
    assert parsed[("n", "p", "c")]["max"][0] == 1.5 and np.isnan(parsed[("n", "p", "c")]["max"][1:]).all()


@pytest.mark.parametrize("bad, reason", [
    ({"metric": {"namespace": "n", "stat": "max"}, "values": [[0, "-1"]]}, "infinite or negative"),
    ({"metric": {"namespace": "n", "stat": "max"}, "values": [[0, "+Inf"]]}, "infinite or negative"),
    ({"metric": {"namespace": "n", "stat": "max"}, "values": [[0, "1", 2]]}, "not \\[time, number\\] pairs"),
    ({"metric": {"namespace": "n", "stat": "max"}, "values": [[0, "x"]]}, "not \\[time, number\\] pairs"),
    ({"metric": {"namespace": 7, "stat": "max"}, "values": []}, "not short text"),
    ({"metric": {"namespace": "n"}, "values": "oops"}, "not a list"),
    ({"values": []}, "not {metric, values}"),
    ("series", "not {metric, values}"),
])
def test_parse_buckets_refuses_what_is_not_a_prometheus_matrix(bad, reason):
    if isinstance(bad, dict) and bad.get("values") and isinstance(bad["values"], list):
        bad["values"][0][0] = int(GRID.ends[0])
    with pytest.raises(DataSourceError, match=reason):
        parse_buckets([bad], GRID, source="http://prom", what="memory statistics")
    with pytest.raises(DataSourceError, match="not a list of series"):
        parse_buckets({"result": []}, GRID, source="http://prom", what="memory statistics")


def test_gc_is_paused_while_any_scan_runs_and_restored_after_the_last():
    assert gc.isenabled()
    inside = threading.Event()
    leave = threading.Event()

    def other_scan():
        with gc_paused():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other_scan)
    with gc_paused():
        thread.start()
        inside.wait(10)
        assert not gc.isenabled()
    assert not gc.isenabled(), "still off: the other scan runs"
    leave.set()
    thread.join(10)
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled(), "a collector the process turned off stays off"
    finally:
        gc.enable()
