"""Usage summaries against numpy's own statistics, and time windows (DST included)."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from finops_operator.models import ClusterState, Container, ContainerKey, Window, Workload, WorkloadRef
from finops_operator.settings import TimeWindow
from finops_operator.snapshot import Snapshot
from finops_operator.stats import window_mask
from finops_operator.usage import matrix_stats, state_with_usage, summarize


def make_snapshot(cpu: np.ndarray, memory: np.ndarray | None = None, *, start: datetime, step: int = 300,
                  throttled: np.ndarray | None = None) -> Snapshot:
    rows, points = cpu.shape
    ts = int(start.timestamp()) + step * np.arange(points, dtype=np.int64)
    ref = WorkloadRef("Deployment", "ns", "app")
    keys = [ContainerKey(ref, f"c{i}") for i in range(rows)]
    window = Window(datetime.fromtimestamp(int(ts[0]), timezone.utc), datetime.fromtimestamp(int(ts[-1]), timezone.utc),
                    step)
    state = ClusterState("c", "r", window, [Workload(ref, 1, [Container(k.container) for k in keys])])
    return Snapshot(state, keys, ts, cpu.astype(np.float32),
                    (memory if memory is not None else cpu * 1e9).astype(np.float32),
                    throttled if throttled is not None else np.full(rows, np.nan, dtype=np.float32))


def test_summaries_match_numpy_with_gaps_in_small_chunks():
    rng = np.random.default_rng(0)
    cpu = rng.gamma(2.0, 0.1, size=(37, 500))
    cpu[rng.random(cpu.shape) < 0.1] = np.nan        # scattered gaps
    cpu[5, :250] = np.nan                            # a young container
    cpu[9] = np.nan                                  # no data at all
    snap = make_snapshot(cpu, start=datetime(2026, 3, 2, tzinfo=timezone.utc))
    wanted = frozenset({50, 90, 95, 97, 99})
    usage = summarize(snap, percentiles={"cpu": wanted, "memory": wanted}, block_rows=8)   # last block partial
    data = snap.cpu.astype(np.float64)
    for row, key in enumerate(snap.keys):
        stats = usage[key].cpu
        if row == 9:
            assert stats is None and usage[key].memory is None
            continue
        values = data[row]
        assert stats.samples == np.count_nonzero(~np.isnan(values)) and stats.expected == 500
        assert set(stats.quantiles) == wanted
        for q in wanted:
            assert stats.percentile(q) == pytest.approx(np.nanpercentile(values, q), rel=1e-6)
        assert stats.max == pytest.approx(np.nanmax(values), rel=1e-7)
        assert stats.mean == pytest.approx(np.nanmean(values), rel=1e-7)
        assert stats.std == pytest.approx(np.nanstd(values), rel=1e-6)
        first = int(np.argmax(~np.isnan(values)))
        assert stats.first_seen == datetime.fromtimestamp(int(snap.timestamps[first]), timezone.utc)
    assert usage[snap.keys[5]].cpu.coverage == pytest.approx(np.count_nonzero(~np.isnan(cpu[5])) / 500)
    assert usage[snap.keys[5]].cpu.first_seen > usage[snap.keys[0]].cpu.first_seen


def test_memory_and_throttled_ratio_are_carried():
    cpu = np.full((2, 10), 0.5)
    memory = np.array([np.arange(10) * 1e8, np.full(10, 3e8)])
    snap = make_snapshot(cpu, memory, start=datetime(2026, 3, 2, tzinfo=timezone.utc),
                         throttled=np.array([0.25, np.nan], dtype=np.float32))
    usage = summarize(snap)
    first, second = (usage[k] for k in snap.keys)
    assert first.memory.max == pytest.approx(9e8) and first.memory.percentile(99) == pytest.approx(8.91e8)
    assert first.cpu_throttled_ratio == pytest.approx(0.25) and second.cpu_throttled_ratio is None
    assert second.memory.std == 0.0 and second.memory.volatility == 0.0


def test_state_with_usage_fills_a_copy(small_simulation):
    snap = small_simulation.snapshot()
    state = state_with_usage(snap)
    assert snap.state.usage == {} and len(state.usage) == len(snap.keys)
    assert state.workloads is snap.state.workloads
    api = state.usage[snap.keys[0]]
    assert api.cpu.expected == 3 * 288 and api.cpu.samples == 3 * 288
    assert 0.05 < api.cpu.mean < 0.25 < api.cpu.max < 0.35     # daily 0.15 +- 0.10, noise 5%


def hours_in_window(snap: Snapshot, window: TimeWindow) -> set[tuple[int, int]]:
    mask = window_mask(snap.timestamps, window)
    return {(t.day, t.hour) for t in (datetime.fromtimestamp(int(x), timezone.utc)
                                      for x in snap.timestamps[mask])}


def test_business_hours_window_follows_dst_in_berlin():
    # 2026-10-25: Berlin leaves summer time (UTC+2 -> UTC+1) at 01:00 UTC.
    start = datetime(2026, 10, 23, tzinfo=timezone.utc)          # Friday
    cpu = np.zeros((1, 4 * 24))                                   # hourly, Fri..Mon
    snap = make_snapshot(cpu, start=start, step=3600)
    window = TimeWindow(days=[0, 1, 2, 3, 4], start_hour=8, end_hour=20, time_zone="Europe/Berlin")
    seen = hours_in_window(snap, window)
    friday = {(23, h) for h in range(6, 18)}                      # 08-20 CEST = 06-18 UTC
    monday = {(26, h) for h in range(7, 19)}                      # 08-20 CET  = 07-19 UTC
    assert seen == friday | monday                                # Saturday/Sunday excluded


def test_window_across_midnight_belongs_to_the_day_it_starts():
    start = datetime(2026, 3, 6, tzinfo=timezone.utc)             # Friday
    snap = make_snapshot(np.zeros((1, 3 * 24)), start=start, step=3600)
    night = TimeWindow(days=[4], start_hour=22, end_hour=6, time_zone="UTC")   # Friday night only
    assert hours_in_window(snap, night) == {(6, 22), (6, 23)} | {(7, h) for h in range(6)}


def test_windowed_summary_counts_only_in_window_points():
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)             # Monday
    ts_hours = np.arange(7 * 24 * 12) * 300 // 3600 % 24          # 7 days at 5 minutes
    cpu = np.where((ts_hours >= 9) & (ts_hours < 17), 1.0, 5.0)[None, :].copy()
    cpu[0, :12] = np.nan                                          # gap outside the window
    cpu[0, 9 * 12: 9 * 12 + 6] = np.nan                           # gap inside: Monday 09:00-09:30
    snap = make_snapshot(cpu, start=start)
    window = TimeWindow(days=[0, 1, 2, 3, 4], start_hour=9, end_hour=17, time_zone="UTC")
    usage = summarize(snap, cpu_window=window)[snap.keys[0]]
    assert usage.cpu.expected == 5 * 8 * 12
    assert usage.cpu.samples == 5 * 8 * 12 - 6
    assert usage.cpu.max == 1.0 and usage.cpu.percentile(90) == 1.0     # the default policy's CPU percentile
    assert usage.memory.max == pytest.approx(5e9)                 # memory not windowed
    assert usage.cpu.first_seen == datetime(2026, 3, 2, 1, tzinfo=timezone.utc)


def test_a_window_that_keeps_no_column_has_no_summary():
    start = datetime(2026, 3, 7, tzinfo=timezone.utc)             # Saturday
    snap = make_snapshot(np.ones((3, 24)), start=start, step=3600)
    weekdays = TimeWindow(days=[0, 1, 2, 3, 4], start_hour=9, end_hour=17, time_zone="UTC")
    assert all(u.cpu is None and u.memory is not None for u in summarize(snap, cpu_window=weekdays).values())
    assert matrix_stats(np.full((2, 4), np.nan), snap.timestamps[:4], snap.state.window) == [None, None]


def test_state_for_policy_uses_each_right_sizers_time_window(small_simulation):
    from finops_operator.settings import load_policy
    from finops_operator.usage import state_for_policy
    snap = small_simulation.snapshot()
    window = {"days": [0, 1, 2, 3, 4], "startHour": 9, "endHour": 17, "timeZone": "Europe/Berlin"}
    policy = load_policy({"detectors": {"cpu": {"timeWindow": window}}})
    state = state_for_policy(snap, policy)
    plain = state_for_policy(snap, load_policy({}))
    key = next(iter(state.usage))
    assert state.usage[key].cpu.expected < plain.usage[key].cpu.expected        # business hours only
    assert state.usage[key].memory.expected == plain.usage[key].memory.expected  # memory has no window


def test_state_for_policy_computes_the_policy_percentiles_exactly(small_simulation):
    from finops_operator.settings import load_policy
    from finops_operator.usage import state_for_policy
    snap = small_simulation.snapshot()
    state = state_for_policy(snap, load_policy({"detectors": {"cpu": {"percentile": 97}, "memory": {"percentile": 100}}}))
    for row, key in enumerate(snap.keys):
        usage = state.usage[key]
        assert set(usage.cpu.quantiles) == {97} and usage.memory.quantiles == {}
        assert usage.cpu.percentile(97) == pytest.approx(np.nanpercentile(snap.cpu[row].astype(np.float64), 97), rel=1e-6)
        assert usage.memory.percentile(100) == usage.memory.max
