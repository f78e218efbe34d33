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

Every pod container of a resource is computed at once, numpy over ``[pods, buckets]`` matrices
(:func:`pod_stats_many`, :func:`pod_usage`, :func:`last_seen`); answers are parsed in one pass
(:func:`parse_buckets`). Replicas (pods of one workload container) are merged by ``stats.merge_replicas``. The
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
from .promhours import MAX_LABEL_VALUE, MAX_SERIES_PER_ANSWER
from .promstats import Labels, PodKey, pod_key

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


def _flatten(result: list, keys: tuple[str, ...], *, source: str, what: str, stat: str | None = None) -> tuple:
    """One pass over a range answer: row and statistic numbers (first seen first), each series' row,
    statistic and point count, and every point in one flat list."""
    rows: dict[tuple[str, ...], int] = {}
    stats: dict[str, int] = {}
    row_of: list[int] = []
    stat_of: list[int] = []
    lengths: list[int] = []
    flat: list = []
    for item in result:
        try:
            metric, points = item["metric"], item["values"]
            key = tuple([metric.get(k, "") for k in keys])
            name = metric.get("stat", "") if stat is None else stat
        except (TypeError, KeyError, AttributeError):
            raise DataSourceError(f"a series in the {what} answer is not {{metric, values}}: {str(item)[:200]}",
                                  source=source) from None
        if not all(isinstance(v, str) and len(v) <= MAX_LABEL_VALUE for v in key) or not isinstance(name, str) \
                or not isinstance(points, list):
            raise DataSourceError(f"a series in the {what} answer has labels that are not short text or values "
                                  f"that are not a list: {str(item)[:200]}", source=source)
        row_of.append(rows.setdefault(key, len(rows)))
        stat_of.append(stats.setdefault(name, len(stats)))
        lengths.append(len(points))
        flat.extend(points)
    return rows, stats, row_of, stat_of, lengths, flat


def parse_buckets(result: object, grid: BucketGrid, *, source: str, what: str,
                  keys: tuple[str, ...] = ("namespace", "pod", "container"), stat: str | None = None) -> Buckets:
    """Per-series, per-statistic arrays over the buckets from a range answer: one statistic ``stat`` (the
    answer of one part), or a bundle split by its ``stat`` label (``stat`` None).

    One pass over the answer collects the points, then numpy converts, checks and places them all at once
    (a 10,000-container answer holds ~60,000 series). NaN is "no data"; a statistic is present for a
    series when it has a point. Refused as :class:`DataSourceError`: an answer that is not a list of
    series, more than ``MAX_SERIES_PER_ANSWER`` series, key labels that are not short text, points that
    are not ``[time, number]`` pairs, infinite or negative values, points off the bucket grid.
    """
    if not isinstance(result, list):
        raise DataSourceError(f"the {what} answer is a {type(result).__name__}, not a list of series", source=source)
    if len(result) > MAX_SERIES_PER_ANSWER:
        raise DataSourceError(f"the {what} answer has {len(result)} series, over the bound of "
                              f"{MAX_SERIES_PER_ANSWER}; narrow the scope (namespaces, cluster matcher)", source=source)
    rows, stats, row_of, stat_of, lengths, flat = _flatten(result, keys, source=source, what=what, stat=stat)
    try:
        pairs = np.array(flat, dtype=np.float64).reshape(-1, 2) if flat else np.empty((0, 2))
        if len(pairs) != sum(lengths):
            raise ValueError(f"{len(flat)} points in {len(pairs)} pairs")
    except (TypeError, ValueError) as exc:
        raise DataSourceError(f"a series in the {what} answer has points that are not [time, number] pairs "
                              f"({str(exc)[:120]})", source=source) from None
    point_row = np.repeat(np.asarray(row_of, dtype=np.int64), lengths)
    point_stat = np.repeat(np.asarray(stat_of, dtype=np.int64), lengths)
    keep = ~np.isnan(pairs[:, 1])
    pairs, point_row, point_stat = pairs[keep], point_row[keep], point_stat[keep]
    if not np.isfinite(pairs).all() or (pairs[:, 1] < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(pairs).all(axis=1) | (pairs[:, 1] < 0))[0])
        key = next(k for k, r in rows.items() if r == point_row[bad])
        raise DataSourceError(f"a series in the {what} answer has an infinite or negative value ({key!r})",
                              source=source)
    idx = grid.index(pairs[:, 0], source=source, what=what)
    cube = np.full((len(stats), len(rows), len(grid.ends)), np.nan)
    cube[point_stat, point_row, idx] = pairs[:, 1]
    present = np.zeros((len(stats), len(rows)), dtype=bool)
    present[point_stat, point_row] = True
    names = list(stats)
    out: Buckets = {}
    for key, r in rows.items():
        row = {names[s]: cube[s, r] for s in np.flatnonzero(present[:, r])}
        if row:
            out[key] = row
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
    return pod_stats_many([row], grid, expected, [window_q], quantiles, [created])[0]


def _stack(rows: list[dict[str, np.ndarray]], stat: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``[pods, buckets]`` of one statistic (NaN where a pod lacks it) and which pods have it."""
    nan = np.full(size, np.nan)
    has = np.fromiter((stat in row for row in rows), dtype=bool, count=len(rows))
    if not has.any():
        return np.full((len(rows), size), np.nan), has
    return np.vstack([row.get(stat, nan) for row in rows]), has


def pod_stats_many(rows: list[dict[str, np.ndarray]], grid: BucketGrid, expected: np.ndarray,
                   window_q: list[dict[int, float]], quantiles: tuple[int, ...],
                   created: list[float | None]) -> list[PodSeriesStats | None]:
    """:func:`pod_stats` of many pod containers at once (numpy over ``[pods, buckets]``; see the module doc)."""
    size = len(grid.ends)
    count, _ = _stack(rows, "count", size)
    count = np.where(np.isnan(count), 0.0, count)
    mean_in, have_mean = _stack(rows, "mean", size)
    rate, have_rate = _stack(rows, "rate", size)
    has = (count > 0) & ~np.isnan(np.where(have_mean[:, None], mean_in, rate))
    alive = has.any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(have_rate[:, None], rate * np.minimum(expected / np.maximum(count, 1), 1e6), mean_in)
        mean = np.where(has, mean, np.nan)
        peak_in, have_max = _stack(rows, "max", size)
        peak = np.where(has, np.where(have_max[:, None], peak_in, mean), np.nan)
        samples = np.where(has, np.minimum(count, expected), 0).astype(np.int64)
        weight = np.where(has, count, 0.0)
        total = weight.sum(axis=1)
        window_mean = np.nansum(mean * weight, axis=1) / total
        std, _ = _stack(rows, "std", size)
        std = np.where(np.isnan(std), 0.0, std)
        variance = np.nansum(weight * (std ** 2 + (mean - window_mean[:, None]) ** 2), axis=1) / total
    bucket_q = {}
    for q in quantiles:
        values, have = _stack(rows, f"q{q}", size)
        bucket_q[q] = np.where(has, np.where(have[:, None], values, peak), np.nan)
    largest_q = {q: np.fmax.reduce(values, axis=1).tolist() for q, values in bucket_q.items()}
    first = np.argmax(has, axis=1)
    picked = np.arange(len(rows))
    share = np.minimum(1.0, samples[picked, first] / np.maximum(expected[first], 1.0))
    estimated = (grid.ends[first] - grid.bucket_s * share).tolist()
    peaks, means = np.fmax.reduce(peak, axis=1).tolist(), window_mean.tolist()
    stds, totals = np.sqrt(np.maximum(variance, 0.0)).tolist(), samples.sum(axis=1).tolist()
    out: list[PodSeriesStats | None] = []
    for i, ok in enumerate(alive.tolist()):
        if not ok:
            out.append(None)
            continue
        seen = created[i] if created[i] is not None and not math.isnan(created[i]) else estimated[i]
        exact = {q: window_q[i][q] if q in window_q[i] else largest_q[q][i] for q in quantiles}
        out.append(PodSeriesStats(samples=int(totals[i]), quantiles=exact, max=peaks[i], mean=means[i],
                                  std=stds[i], first=int(seen), bucket_samples=samples[i], bucket_mean=mean[i],
                                  bucket_max=peak[i], bucket_quantiles={q: v[i] for q, v in bucket_q.items()}))
    return out


def merge_grid(grid: BucketGrid, expected: np.ndarray) -> MergeBuckets:
    """The buckets every pod of a merge shares (built once per resource, not per workload container)."""
    return MergeBuckets(seconds=grid.bucket_s, ends=tuple(int(e) for e in grid.ends),
                        expected=expected.astype(np.int64))


def merge(pods: list[PodSeriesStats], grid: BucketGrid, expected: np.ndarray, *,
          buckets: MergeBuckets | None = None) -> UsageStats | None:
    """The worst replica of one workload container's pods (``stats.merge_replicas``); ``buckets`` is
    :func:`merge_grid` of the same grid and expected counts when the caller built it once for many merges."""
    return merge_replicas(pods, expected=int(expected.sum()), buckets=buckets or merge_grid(grid, expected))


def last_seen(buckets: Buckets, grid: BucketGrid) -> dict[PodKey, float]:
    """The end of each pod container's latest bucket with samples (which pod is the current one)."""
    keys = list(buckets)
    count, _ = _stack([buckets[key] for key in keys], "count", len(grid.ends))
    seen = count > 0                                   # NaN > 0 is False
    latest = len(grid.ends) - 1 - np.argmax(seen[:, ::-1], axis=1)
    at = grid.ends[latest].astype(np.float64).tolist()
    return {key: at[i] for i, (key, any_seen) in enumerate(zip(keys, seen.any(axis=1).tolist())) if any_seen}


def window_quantiles(rows: dict[str, list[tuple[Labels, float]]], resource: str) -> dict[PodKey, dict[int, float]]:
    """``{pod container: {percent: value}}`` of one resource from the window-quantiles bundle."""
    out: dict[PodKey, dict[int, float]] = defaultdict(dict)
    prefix = f"{resource}_q"
    for stat, items in rows.items():
        if stat.startswith(prefix):
            for labels, value in items:
                out[pod_key(labels)][int(stat[len(prefix):])] = value
    return out


@dataclass(slots=True)
class NodeSums:
    """Per-node sums of the pods' per-bucket means (cores, bytes): node usage without a join query."""

    grid: BucketGrid
    cpu: dict[str, np.ndarray] = field(default_factory=dict)
    memory: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, resource: str, placed: dict[tuple[str, str], str], means: dict[tuple[str, str], np.ndarray]) -> None:
        table = getattr(self, resource)
        pods = [(node, values) for pod, values in means.items() if (node := placed.get(pod))]
        if not pods:
            return
        nodes = list(dict.fromkeys(node for node, _ in pods))
        index = {node: i for i, node in enumerate(nodes)}
        summed = sum_groups(np.vstack([values for _, values in pods]), [index[node] for node, _ in pods], len(nodes))
        for node, values in zip(nodes, summed):
            base = table.get(node)
            table[node] = values if base is None else np.where(np.isnan(base), values, base + np.nan_to_num(values))

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


def sum_groups(values: np.ndarray, groups: list[int], size: int) -> np.ndarray:
    """``[size, buckets]`` sums of the rows of ``values`` by group, added in row order, NaN-skipping, NaN where
    a group has no number in a bucket."""
    rows = np.asarray(groups, dtype=np.int64)
    out = np.zeros((size, values.shape[1]))
    np.add.at(out, rows, np.where(np.isnan(values), 0.0, values))
    seen = np.zeros(out.shape, dtype=bool)
    np.logical_or.at(seen, rows, ~np.isnan(values))
    return np.where(seen, out, np.nan)


def pod_usage(buckets: Buckets, expected: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """What each pod used per bucket on average over the WHOLE bucket (the sum over its containers): a pod
    alive part of a bucket weighs that part, so pods on a node add up to the node's usage. Per row: the
    counter's ``rate`` over the bucket, else ``mean`` x count / expected, else (node-usage query) ``cpu_rate``,
    or ``cpu_sum`` / ``memory_sum`` / expected."""
    keys = list(buckets)
    rows = [buckets[key] for key in keys]
    size = len(expected)
    stacked = {stat: _stack(rows, stat, size) for stat in ("rate", "mean", "count", "cpu_rate", "cpu_sum",
                                                            "memory_sum")}
    (rate, has_rate), (mean, has_mean) = stacked["rate"], stacked["mean"]
    (cpu_rate, has_cpu_rate), (cpu_sum, has_cpu_sum), (memory_sum, has_memory_sum) = \
        stacked["cpu_rate"], stacked["cpu_sum"], stacked["memory_sum"]
    count = np.where(np.isnan(stacked["count"][0]), 0.0, stacked["count"][0])
    used = np.where(has_rate[:, None], rate,
                    np.where(has_mean[:, None], mean * count / expected,
                             np.where(has_cpu_rate[:, None], cpu_rate,
                                      np.where(has_cpu_sum[:, None], cpu_sum, memory_sum) / expected)))
    use = (has_rate | has_mean | has_cpu_rate | has_cpu_sum | has_memory_sum).tolist()
    pods = list(dict.fromkeys((key[0], key[1]) for key, ok in zip(keys, use) if ok))
    if not pods:
        return {}
    index = {pod: i for i, pod in enumerate(pods)}
    picked = [i for i, ok in enumerate(use) if ok]
    summed = sum_groups(used[picked], [index[(keys[i][0], keys[i][1])] for i in picked], len(pods))
    return dict(zip(pods, summed))


def window_of(grid: BucketGrid, step_s: int) -> Window:
    """The window the buckets cover, at ``step_s``."""
    return Window(datetime.fromtimestamp(int(grid.ends[0]) - grid.bucket_s, timezone.utc),
                  datetime.fromtimestamp(int(grid.ends[-1]), timezone.utc), step_s)
