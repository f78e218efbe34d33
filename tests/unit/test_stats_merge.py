"""stats.merge_replicas: the worst replica per bucket and for the window (properties and a rollout)."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finops_operator.stats import Buckets, PodSeriesStats, merge_replicas

DAY = 86_400
END = 1_790_006_400
BUCKETS = Buckets(DAY, (END - 2 * DAY, END - DAY, END), np.array([289, 288, 288]))


def pod(bucket_samples, bucket_max, *, first=END - 3 * DAY, quantile=0.5, mean=0.2, std=0.1) -> PodSeriesStats:
    counts = np.array(bucket_samples, dtype=np.int64)
    peaks = np.array(bucket_max, dtype=np.float64)
    means = np.where(counts > 0, peaks / 2, np.nan)
    return PodSeriesStats(samples=int(counts.sum()), quantiles={95: quantile}, max=float(np.nanmax(peaks)),
                          mean=mean, std=std, first=first, bucket_samples=counts, bucket_mean=means,
                          bucket_max=peaks, bucket_quantiles={95: np.where(counts > 0, peaks * 0.9, np.nan)})


pods = st.lists(st.tuples(st.lists(st.integers(0, 288), min_size=3, max_size=3),   # a pod fills a bucket at most
                          st.lists(st.floats(0, 100), min_size=3, max_size=3),
                          st.floats(0, 100), st.integers(END - 3 * DAY, END)), min_size=1, max_size=4)


def build(spec) -> list[PodSeriesStats]:
    out = []
    for counts, peaks, q, first in spec:
        peaks = [p if c > 0 else np.nan for c, p in zip(counts, peaks)]
        if sum(counts) > 0:
            out.append(pod(counts, peaks, first=first, quantile=q))
    return out


@settings(max_examples=100, deadline=None)
@given(spec=pods)
def test_merge_of_one_pod_equals_the_pod(spec):
    for one in build(spec):
        merged = merge_replicas([one], expected=865, buckets=BUCKETS)
        assert merged.samples == one.samples and merged.quantiles == one.quantiles
        assert (merged.max, merged.mean, merged.std) == (one.max, one.mean, one.std)
        assert merged.first_seen == datetime.fromtimestamp(one.first, timezone.utc)
        assert merged.days.samples == tuple(np.minimum(one.bucket_samples, BUCKETS.expected).tolist())
        assert np.array_equal(merged.days.max, one.bucket_max, equal_nan=True)
        assert np.array_equal(merged.days.mean, one.bucket_mean, equal_nan=True)
        assert np.array_equal(merged.days.quantiles[95], one.bucket_quantiles[95], equal_nan=True)


@settings(max_examples=100, deadline=None)
@given(spec=pods)
def test_merge_is_the_worst_replica_and_caps_samples_per_bucket(spec):
    replicas = build(spec)
    merged = merge_replicas(replicas, expected=865, buckets=BUCKETS)
    if not replicas:
        assert merged is None
        return
    assert merged.max == max(p.max for p in replicas) and merged.quantiles[95] == max(p.quantiles[95] for p in replicas)
    assert merged.first_seen == datetime.fromtimestamp(min(p.first for p in replicas), timezone.utc)
    for i in range(3):
        total = sum(int(p.bucket_samples[i]) for p in replicas)
        assert merged.days.samples[i] == min(total, BUCKETS.expected[i])
        seen = [p.bucket_max[i] for p in replicas if p.bucket_samples[i] > 0]
        assert merged.days.max[i] == max(seen) if seen else np.isnan(merged.days.max[i])
    assert merged.samples == sum(merged.days.samples) <= 865
    other = merge_replicas(list(reversed(replicas)), expected=865, buckets=BUCKETS)            # order-free
    assert dataclasses.replace(other, days=None) == dataclasses.replace(merged, days=None)
    for name in ("samples", "mean", "max"):
        assert np.array_equal(getattr(other.days, name), getattr(merged.days, name), equal_nan=True)


def test_a_rollout_adds_up_and_side_by_side_replicas_do_not_count_twice():
    old = pod([289, 100, 0], [1.0, 2.0, np.nan], first=END - 3 * DAY)
    new = pod([0, 188, 288], [np.nan, 0.5, 0.7], first=END - DAY - 3600, quantile=0.9)
    rollout = merge_replicas([old, new], expected=865, buckets=BUCKETS)
    assert rollout.samples == 865 and rollout.coverage == 1.0
    assert rollout.days.max == (1.0, 2.0, 0.7) and rollout.quantiles == {95: 0.9}
    side = merge_replicas([pod([0, 0, 288], [np.nan, np.nan, 1.0])] * 3, expected=865, buckets=BUCKETS)
    assert side.samples == 288 and side.days.samples == (0, 0, 288)
    assert merge_replicas([], expected=865, buckets=BUCKETS) is None
    assert pytest.approx(rollout.days.mean[1]) == 1.0             # worst replica's bucket mean
