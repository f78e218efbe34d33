"""Raw usage series -> per-container summaries (UsageStats / ContainerUsage): the snapshot path.

The statistics themselves are :mod:`finops_operator.stats` (exact window percentiles, max,
mean, std, samples, first_seen and the per-bucket :class:`~finops_operator.models.DaySummary`,
streaming row blocks); this module wires a :class:`~finops_operator.snapshot.Snapshot` to
them: which percentiles (the policy's, :func:`~finops_operator.stats.needed_percentiles`),
which columns (a right-sizer's :class:`~finops_operator.settings.TimeWindow`, see
:func:`~finops_operator.stats.window_mask`) and the bucket grid of the snapshot's window.
The snapshot's rows are read block by block (:meth:`Snapshot.row_blocks`), so memory stays
bounded at 10,000 containers x 4,032 points.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from .models import ClusterState, ContainerKey, ContainerUsage, UsageStats, Window
from .settings import PolicySettings, TimeWindow
from .stats import BucketGrid, bucket_seconds, grid, needed_percentiles, summarise, window_mask

if TYPE_CHECKING:
    from .snapshot import Snapshot

BLOCK_ROWS = 256


def usage_grid(timestamps: np.ndarray, window: Window, time_window: TimeWindow | None = None) -> BucketGrid:
    """The bucket grid of ``window`` over ``timestamps``, restricted to ``time_window``'s columns."""
    return grid(timestamps, int(window.end.timestamp()), bucket_seconds(window), window_mask(timestamps, time_window))


def matrix_stats(matrix: np.ndarray, timestamps: np.ndarray, window: Window, *,
                 percentiles: Iterable[int] = ()) -> list[UsageStats | None]:
    """Window summaries (no per-bucket ``days``) of every row of an in-memory ``matrix`` [rows, points], e.g.
    nodes' total usage, which snapshots carry in their inventory."""
    rows = summarise(np.asarray(matrix), timestamps, usage_grid(timestamps, window), percentiles=percentiles)
    return [None if stats is None else dataclasses.replace(stats, days=None) for stats in rows]


def default_percentiles() -> dict[str, frozenset[int]]:
    """The percentiles a default policy needs (callers without a policy: tests, benchmarks, demos)."""
    return needed_percentiles(PolicySettings())


def summarize(snapshot: "Snapshot", *, cpu_window: TimeWindow | None = None,
              memory_window: TimeWindow | None = None, percentiles: dict[str, frozenset[int]] | None = None,
              block_rows: int = BLOCK_ROWS) -> dict[ContainerKey, ContainerUsage]:
    """Per-container usage summaries from a snapshot's raw series.

    ``percentiles`` per resource (``{"cpu": ..., "memory": ...}``, from :func:`needed_percentiles`)
    defaults to what a default policy needs.
    """
    ts, window = snapshot.timestamps, snapshot.state.window
    wanted = percentiles if percentiles is not None else default_percentiles()
    cpu = summarise(snapshot.row_blocks("cpu", block_rows), ts, usage_grid(ts, window, cpu_window),
                    percentiles=wanted["cpu"])
    memory = summarise(snapshot.row_blocks("memory", block_rows), ts, usage_grid(ts, window, memory_window),
                       percentiles=wanted["memory"])
    return dict(_containers(snapshot.keys, cpu, memory, snapshot.throttled.tolist()))


def _containers(keys: list[ContainerKey], cpu: Iterator[UsageStats | None], memory: Iterator[UsageStats | None],
                throttled: list[float]) -> Iterator[tuple[ContainerKey, ContainerUsage]]:
    for key, cpu_stats, memory_stats, ratio in zip(keys, cpu, memory, throttled, strict=True):
        yield key, ContainerUsage(key, cpu_stats, memory_stats, None if ratio != ratio else float(ratio))


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
