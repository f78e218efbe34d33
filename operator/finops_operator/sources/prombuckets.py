"""Pure half of the live usage scan: per-bucket answers -> per-pod :class:`UsageStats` with a :class:`DaySummary`.

Range answers are evaluated at the bucket ends (``ends[i]``, end-aligned to
the window end); each point describes the samples of ``(ends[i] - bucket,
ends[i]]``. How figures are built, per pod container and resource:

* ``samples[i]`` is the bucket's sample count, capped by ``expected[i]``.
  ``expected[i]`` is data-driven: the largest count any series of the scan
  has in a bucket (the densest scrape shows the scrape interval), or, with a
  ``timeWindow``, the subquery points inside the window in that bucket (both
  at least 1 where anything was seen). Coverage = sum(samples) / sum(expected).
* raw CPU: the mean of a bucket is ``rate(counter[bucket])`` (the counter's
  increase over the whole bucket) scaled by ``expected / count`` for a pod
  alive only part of the bucket, so it is the mean while the pod ran.
* window ``mean`` is the count-weighted mean of bucket means, ``std`` the pooled
  standard deviation (bucket variances plus the spread of bucket means), ``max``
  the largest bucket max; window ``quantiles`` are the EXACT ones of the
  instant query (the largest bucket quantile only if that answer lacks one).
* ``first_seen`` is ``kube_pod_created`` where kube-state-metrics has it, else
  the end of the first bucket with samples less the share of it they cover.

Replicas (pods of one workload container) are merged by ``stats.merge_replicas``. The
buckets are the snapshot path's (``usage.usage_grid``); the range queries read ``(end -
bucket, end]``, so the one point a window's start adds to its oldest bucket is not read.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from ..errors import DataSourceError
from ..models import UsageStats, Window
from ..settings import TimeWindow
from ..stats import BucketGrid as StepGrid
from ..stats import Buckets as MergeBuckets
from ..stats import PodSeriesStats, bucket_ends, bucket_seconds, merge_replicas
from .promhours import parse_matrix
from .promstats import Labels, PodKey

MAX_BUCKETS = 2200         # 90 days of hours, 1 year of days: far above what a window needs


@dataclass(frozen=True, slots=True)
class BucketGrid:
    """The bucket ends of a scan (epoch seconds, oldest first) and the bucket length."""

    ends: np.ndarray
    bucket_s: int

    @classmethod
    def of(cls, window: Window) -> "BucketGrid":
        """The buckets of ``window`` (``stats.bucket_seconds`` long, end-aligned, covering it)."""
        seconds = bucket_seconds(window)
        ends = bucket_ends(int(window.start.timestamp()), int(window.end.timestamp()), seconds)
        if not 0 < len(ends) <= MAX_BUCKETS:
            raise DataSourceError(f"{len(ends)} buckets of {seconds}s is outside 1..{MAX_BUCKETS}", source="scan")
        return cls(ends, seconds)

    @property
    def start(self) -> int:
        """Epoch second of the first range evaluation (the first bucket's end)."""
        return int(self.ends[0])

    @property
    def span_s(self) -> int:
        return self.bucket_s * len(self.ends)

    def index(self, times: np.ndarray, *, source: str, what: str) -> np.ndarray:
        offset = times - int(self.ends[0])
        idx = np.floor_divide(offset, self.bucket_s).astype(np.int64)
        bad = (offset % self.bucket_s != 0) | (idx < 0) | (idx >= len(self.ends))
        if bad.any():
            raise DataSourceError(f"the answer to the {what} query has a point at {times[bad][0]!r}, off the "
                                  "bucket grid that was asked for; is this a Prometheus-compatible server?",
                                  source=source)
        return idx


Buckets = dict[PodKey, dict[str, np.ndarray]]      # pod container -> statistic -> per-bucket values (NaN: none)


def parse_buckets(result: object, grid: BucketGrid, *, source: str, what: str,
                  keys: tuple[str, ...] = ("namespace", "pod", "container")) -> Buckets:
    """Per-series, per-statistic arrays over the buckets from a bundled range answer."""
    out: Buckets = defaultdict(dict)
    size = len(grid.ends)
    for stat, rows in parse_matrix(result, grid, source=source, what=what).items():  # type: ignore[arg-type]
        for labels, idx, values in rows:
            key = tuple(labels.get(k, "") for k in keys)
            array = out[key].setdefault(stat, np.full(size, np.nan))  # type: ignore[index]
            array[idx] = values
    return out


def step_grid(window: Window, time_window: TimeWindow | None = None) -> StepGrid:
    """The snapshot path's bucket grid of ``window`` at its step (``usage.usage_grid``): the same buckets,
    and per bucket the step points (inside ``time_window``) a full series has."""
    from ..usage import usage_grid
    start, end, step = int(window.start.timestamp()), int(window.end.timestamp()), window.step_seconds
    return usage_grid(np.arange(start, end + 1, step, dtype=np.int64), window, time_window)


def expected_counts(buckets: Buckets, window: Window, fallback_interval_s: int,
                    time_window: TimeWindow | None = None) -> np.ndarray:
    """Points a fully covered series has in each bucket (see the module doc): the step points inside a
    ``time_window`` (subqueries read one per step), else the densest series' count, scaled down for a
    first bucket that reaches back before the window's start."""
    steps = step_grid(window, time_window)
    if time_window is not None:
        return steps.expected.astype(np.float64)          # 0 for a bucket wholly outside the window
    counts = [row["count"] for row in buckets.values() if "count" in row]
    densest = float(np.nanmax(counts)) if counts and not np.isnan(counts).all() else 0.0
    per_bucket = densest or float(steps.seconds // max(1, fallback_interval_s))
    full = float(max(steps.expected[1:].max() if len(steps.expected) > 1 else steps.expected[0], 1))
    return np.maximum(1.0, np.minimum(per_bucket, np.ceil(per_bucket * steps.expected / full)))


def pod_stats(row: dict[str, np.ndarray], grid: BucketGrid, expected: np.ndarray, window_q: dict[int, float],
              quantiles: tuple[int, ...], created: float | None = None) -> PodSeriesStats | None:
    """One pod container's statistics over the window from its bucket arrays; None without samples."""
    count = np.nan_to_num(row.get("count", np.zeros(len(grid.ends))))
    has = (count > 0) & ~np.isnan(row.get("mean", row.get("rate", np.full(len(grid.ends), np.nan))))
    if not has.any():
        return None
    mean = row["rate"] * np.minimum(expected / np.maximum(count, 1), 1e6) if "rate" in row else row["mean"]
    mean = np.where(has, mean, np.nan)
    peak = np.where(has, row.get("max", mean), np.nan)
    samples = np.where(has, np.minimum(count, expected), 0).astype(np.int64)
    weight = np.where(has, count, 0.0)
    total = float(weight.sum())
    window_mean = float(np.nansum(mean * weight) / total)
    std = np.nan_to_num(row.get("std", np.zeros(len(grid.ends))))
    variance = float(np.nansum(weight * (std ** 2 + (mean - window_mean) ** 2)) / total)
    bucket_q = {q: np.where(has, row.get(f"q{q}", peak), np.nan) for q in quantiles}
    exact = {q: window_q[q] if q in window_q else float(np.nanmax(bucket_q[q])) for q in quantiles}
    first = int(np.argmax(has))
    seen = created if created is not None and not math.isnan(created) else \
        float(grid.ends[first]) - grid.bucket_s * min(1.0, samples[first] / max(expected[first], 1.0))
    return PodSeriesStats(samples=int(samples.sum()), quantiles=exact, max=float(np.nanmax(peak)), mean=window_mean,
                          std=math.sqrt(max(variance, 0.0)), first=int(seen), bucket_samples=samples,
                          bucket_mean=mean, bucket_max=peak, bucket_quantiles=bucket_q)


def merge(pods: list[PodSeriesStats], grid: BucketGrid, expected: np.ndarray) -> UsageStats | None:
    """The worst replica of one workload container's pods (``stats.merge_replicas``)."""
    buckets = MergeBuckets(seconds=grid.bucket_s, ends=tuple(int(e) for e in grid.ends),
                           expected=expected.astype(np.int64))
    return merge_replicas(pods, expected=int(expected.sum()), buckets=buckets)


def last_seen(buckets: Buckets, grid: BucketGrid) -> dict[PodKey, float]:
    """The end of each pod container's latest bucket with samples (which pod is the current one)."""
    out: dict[PodKey, float] = {}
    for key, row in buckets.items():
        count = np.nan_to_num(row.get("count", np.zeros(len(grid.ends))))
        if (count > 0).any():
            out[key] = float(grid.ends[len(count) - 1 - int(np.argmax(count[::-1] > 0))])
    return out


def window_quantiles(rows: dict[str, list[tuple[Labels, float]]], resource: str) -> dict[PodKey, dict[int, float]]:
    """``{pod container: {percent: value}}`` of one resource from the window-quantiles bundle."""
    out: dict[PodKey, dict[int, float]] = defaultdict(dict)
    prefix = f"{resource}_q"
    for stat, items in rows.items():
        if stat.startswith(prefix):
            for labels, value in items:
                key = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
                out[key][int(stat[len(prefix):])] = value
    return out


@dataclass(slots=True)
class NodeSums:
    """Per-node sums of the pods' per-bucket means (cores, bytes): node usage without a join query."""

    grid: BucketGrid
    cpu: dict[str, np.ndarray] = field(default_factory=dict)
    memory: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, resource: str, placed: dict[tuple[str, str], str], means: dict[tuple[str, str], np.ndarray]) -> None:
        table = getattr(self, resource)
        for pod, values in means.items():
            node = placed.get(pod)
            if node:
                base = table.setdefault(node, np.full(len(self.grid.ends), np.nan))
                table[node] = np.where(np.isnan(base), values, base + np.nan_to_num(values))

    def stats(self, resource: str, node: str, quantiles: tuple[int, ...]) -> UsageStats | None:
        """The node's figures over its bucket sums (samples and expected count buckets)."""
        values = getattr(self, resource).get(node)
        if values is None or np.isnan(values).all():
            return None
        seen = values[~np.isnan(values)]
        first = float(self.grid.ends[int(np.argmax(~np.isnan(values)))]) - self.grid.bucket_s
        return UsageStats(samples=len(seen), expected=len(values),
                          quantiles={q: float(np.percentile(seen, q)) for q in quantiles}, max=float(seen.max()),
                          mean=float(seen.mean()), std=float(seen.std()),
                          first_seen=datetime.fromtimestamp(first, tz=timezone.utc))


def pod_usage(buckets: Buckets, expected: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """What each pod used per bucket on average over the WHOLE bucket (the sum over its containers): a pod
    alive part of a bucket weighs that part, so pods on a node add up to the node's usage."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for (namespace, pod, *_), row in buckets.items():
        if "rate" in row:
            used = row["rate"]                          # the counter's increase over the bucket / bucket
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


def window_of(grid: BucketGrid, step_s: int) -> Window:
    """The window the buckets cover, at ``step_s``."""
    return Window(datetime.fromtimestamp(int(grid.ends[0]) - grid.bucket_s, timezone.utc),
                  datetime.fromtimestamp(int(grid.ends[-1]), timezone.utc), step_s)
