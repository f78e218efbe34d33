"""Raw usage series -> per-container summaries (UsageStats / ContainerUsage).

Everything is vectorised numpy over row chunks (``chunk_rows`` containers at a
time, so memory stays bounded at 10,000 containers x 4,032 points). Each chunk
is sorted once along the time axis (NaN sorts last) and every percentile is
read from the sorted rows with the same linear interpolation as
``numpy.nanpercentile`` (method ``linear``); mean and population std
(``ddof=0``) are computed in float64.

A :class:`~finops_operator.settings.TimeWindow` (weekdays + hours in an IANA
time zone) keeps only the columns whose *local* time is inside the window,
converted per timestamp with ``zoneinfo`` so DST shifts are honoured. A window
that ends before it starts (22 -> 6) crosses midnight and belongs to the day it
starts on. ``expected`` then counts only in-window points, ``samples`` the
non-NaN ones among them. ``first_seen`` is the first sample of the whole series
(the container's age), whatever the window. A container without any sample in
the window gets ``None`` for that resource: no data is never reported as zero.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterable
from zoneinfo import ZoneInfo

import numpy as np

from .models import ClusterState, ContainerKey, ContainerUsage, UsageStats
from .settings import PolicySettings, TimeWindow
from .stats import needed_percentiles

if TYPE_CHECKING:
    from .snapshot import Snapshot

CHUNK_ROWS = 1024


def window_mask(timestamps: np.ndarray, window: TimeWindow | None) -> np.ndarray | None:
    """Boolean column mask for ``window`` (None = every column)."""
    if window is None:
        return None
    zone = ZoneInfo(window.time_zone)
    days = set(window.days)
    mask = np.zeros(len(timestamps), dtype=bool)
    for i, ts in enumerate(timestamps.tolist()):
        local = datetime.fromtimestamp(ts, zone)
        hour = local.hour + local.minute / 60.0
        if window.start_hour < window.end_hour:
            mask[i] = local.weekday() in days and window.start_hour <= hour < window.end_hour
        else:   # crosses midnight: the late part belongs to the previous day
            mask[i] = (local.weekday() in days and hour >= window.start_hour) or \
                ((local.weekday() - 1) % 7 in days and hour < window.end_hour)
    return mask


@dataclasses.dataclass(slots=True)
class RowStats:
    """Column arrays of summaries, one entry per row (NaN where a row has no samples)."""

    samples: np.ndarray
    expected: int
    percentiles: dict[int, np.ndarray]
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    first_index: np.ndarray     # first non-NaN column of the full row, -1 when none

    def stats(self, row: int, timestamps: np.ndarray) -> UsageStats | None:
        if self.samples[row] == 0:
            return None
        first = int(self.first_index[row])
        seen = datetime.fromtimestamp(int(timestamps[first]), timezone.utc) if first >= 0 else None
        quantiles = {q: float(values[row]) for q, values in sorted(self.percentiles.items())}
        return UsageStats(int(self.samples[row]), self.expected, quantiles, float(self.max[row]),
                          float(self.mean[row]), float(self.std[row]), seen)


def row_stats(matrix: np.ndarray, mask: np.ndarray | None = None, *, percentiles: Iterable[int] = (),
              chunk_rows: int = CHUNK_ROWS) -> RowStats:
    """Summaries of every row of ``matrix`` [rows, points], restricted to ``mask`` columns.

    ``percentiles`` are the integer percentiles (0..100) computed besides max, mean and std.
    """
    rows = matrix.shape[0]
    expected = int(matrix.shape[1] if mask is None else mask.sum())
    out = RowStats(np.zeros(rows, dtype=np.int64), expected, {q: np.full(rows, np.nan) for q in sorted(set(percentiles))},
                   np.full(rows, np.nan), np.full(rows, np.nan), np.full(rows, np.nan),
                   np.full(rows, -1, dtype=np.int64))
    for start in range(0, rows, chunk_rows):
        stop = min(rows, start + chunk_rows)
        full = matrix[start:stop]
        present = ~np.isnan(full)
        any_present = present.any(axis=1)
        out.first_index[start:stop] = np.where(any_present, np.argmax(present, axis=1), -1)
        block = full if mask is None else full[:, mask]
        _summarise_block(block, out, start)
    return out


def _summarise_block(block: np.ndarray, out: RowStats, start: int) -> None:
    stop = start + block.shape[0]
    ordered = np.sort(block, axis=1)                       # NaN last
    count = np.count_nonzero(~np.isnan(block), axis=1)
    out.samples[start:stop] = count
    has = count > 0
    if not has.any() or block.shape[1] == 0:
        return
    rows = np.arange(block.shape[0])
    last = np.maximum(count - 1, 0)
    for q in out.percentiles:
        pos = q / 100.0 * last
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        frac = pos - lo
        low_v = ordered[rows, lo].astype(np.float64)
        high_v = ordered[rows, hi].astype(np.float64)
        out.percentiles[q][start:stop] = np.where(has, low_v + (high_v - low_v) * frac, np.nan)
    out.max[start:stop] = np.where(has, ordered[rows, last], np.nan)
    values = block.astype(np.float64)
    safe = np.maximum(count, 1)
    mean = np.nansum(values, axis=1) / safe
    centred = values - mean[:, None]
    out.mean[start:stop] = np.where(has, mean, np.nan)
    out.std[start:stop] = np.where(has, np.sqrt(np.nansum(centred * centred, axis=1) / safe), np.nan)


def series_stats(values: np.ndarray, timestamps: np.ndarray, percentiles: Iterable[int] = ()) -> UsageStats | None:
    """Summary of one series (e.g. a node's total usage)."""
    return row_stats(np.asarray(values, dtype=np.float64)[None, :], percentiles=percentiles).stats(0, timestamps)


def default_percentiles() -> dict[str, frozenset[int]]:
    """The percentiles a default policy needs (callers without a policy: tests, benchmarks, demos)."""
    return needed_percentiles(PolicySettings())


def summarize(snapshot: "Snapshot", *, cpu_window: TimeWindow | None = None,
              memory_window: TimeWindow | None = None, percentiles: dict[str, frozenset[int]] | None = None,
              chunk_rows: int = CHUNK_ROWS) -> dict[ContainerKey, ContainerUsage]:
    """Per-container usage summaries from a snapshot's raw series.

    ``percentiles`` per resource (``{"cpu": ..., "memory": ...}``, from :func:`needed_percentiles`)
    defaults to what a default policy needs.
    """
    ts = snapshot.timestamps
    wanted = percentiles if percentiles is not None else default_percentiles()
    cpu = row_stats(snapshot.cpu, window_mask(ts, cpu_window), percentiles=wanted["cpu"], chunk_rows=chunk_rows)
    mem = row_stats(snapshot.memory, window_mask(ts, memory_window), percentiles=wanted["memory"],
                    chunk_rows=chunk_rows)
    throttled = snapshot.throttled.tolist()
    result: dict[ContainerKey, ContainerUsage] = {}
    for row, key in enumerate(snapshot.keys):
        ratio = throttled[row]
        result[key] = ContainerUsage(key, cpu.stats(row, ts), mem.stats(row, ts),
                                     None if ratio != ratio else float(ratio))
    return result


def state_with_usage(snapshot: "Snapshot", *, cpu_window: TimeWindow | None = None,
                     memory_window: TimeWindow | None = None,
                     percentiles: dict[str, frozenset[int]] | None = None) -> ClusterState:
    """The snapshot's inventory with ``usage`` filled (the snapshot itself is not changed)."""
    usage = summarize(snapshot, cpu_window=cpu_window, memory_window=memory_window, percentiles=percentiles)
    return dataclasses.replace(snapshot.state, usage=usage)


def state_for_policy(snapshot: "Snapshot", settings: PolicySettings) -> ClusterState:
    """The snapshot's inventory with usage summarised over each right-sizer's time window, if it has one."""
    return state_with_usage(snapshot, cpu_window=settings.detectors.cpu.time_window,
                            memory_window=settings.detectors.memory.time_window,
                            percentiles=needed_percentiles(settings))
