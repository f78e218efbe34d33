"""The scenario simulator's OpenMetrics, backfilled into a real Prometheus, read back by PrometheusSource.

The figures must match what ``finops_operator.usage.summarize`` computes from
the same simulation (the snapshot path), container by container.

Tolerances, and why:
* The export samples every 300 s exactly on the query grid, so the test reads
  CPU with ``rate(...[300s])``: each window holds the two samples around one
  step and rate() returns that step's simulated cores without extrapolation.
  The first point of every series has no predecessor and is missing from the
  rate() series, so CPU quantiles may move by one rank in 288: compared
  within 3% relative. Memory samples are the simulated float32 values rounded
  to whole bytes: compared within 1e-6 relative.
* ``spread=0``: every replica carries the worst-replica series, so the
  per-workload max over pods equals the snapshot exactly (within the above).
* ``spread=0.15``: replicas sit up to 15% under the worst one at each step.
  The adapter's worst replica is the max over pods of each pod's statistic,
  so its max is exact (the pod at f=1 at the peak step) while its quantiles
  lie between 85% and 100% of the per-step-max quantile ``summarize`` sees.
Only containers with a sample at every step are compared figure by figure;
all others must at least be present with comparable coverage.
"""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from finops_operator.settings import TimeWindow
from finops_operator.simulator import generate_scenario, simulate
from finops_operator.sources.prometheus import PrometheusSource
from finops_operator.sources.promql import Scope
from finops_operator.usage import summarize
from tests.support.prom_requests import scan_requests
from tests.support.prometheus_server import history_end, serve_simulation

pytestmark = pytest.mark.integration
STEP = 300
PERCENTILES = {"cpu": frozenset({95}), "memory": frozenset({95})}
# business hours in a zone 1-2 h off UTC, every day (the simulated day may be a weekend)
HOURS = TimeWindow(days=list(range(7)), start_hour=8, end_hour=18, time_zone="Europe/Berlin")


@pytest.fixture(scope="module", params=[0.0, 0.15], ids=["spread0", "spread15"])
def backfilled(request, tmp_path_factory):
    spread = request.param
    end = datetime.fromtimestamp(history_end(), timezone.utc)
    sim = simulate(generate_scenario(workloads=12, containers_per_workload=2, days=1, step_seconds=STEP, seed=11,
                                     end=end))
    server = serve_simulation(sim, tmp_path_factory.mktemp(f"sim-prometheus-{spread}"), spread=spread)
    source = PrometheusSource(server.url, scrape_interval=STEP)
    result = source.collect(Scope(), sim.state.window, rate_window_s=STEP, percentiles=PERCENTILES)
    business = source.collect(Scope(), sim.state.window, rate_window_s=STEP, percentiles=PERCENTILES,
                              time_windows={"cpu": HOURS, "memory": HOURS})
    yield spread, sim, result, business
    server.stop()


def complete_rows(sim) -> list[int]:
    return [row for row in range(len(sim.keys))
            if not np.isnan(sim.cpu[row]).any() and not np.isnan(sim.memory[row]).any()]


def test_every_simulated_container_is_read_back(backfilled):
    _, sim, result, business = backfilled
    running = {key for key in sim.keys
               if any(p.owner == key.workload and p.node and p.phase == "Running" for p in sim.state.pods)}
    assert running and set(result.usage) == running
    assert result.queries == scan_requests(PERCENTILES, node_query=False, remote=True)   # no node query
    assert business.queries == scan_requests(PERCENTILES, node_query=True)  # a time window: every hour's usage
    want = summarize(sim.snapshot())
    for key in running:
        got, ref = result.usage[key], want[key]
        assert got.memory is not None and ref.memory is not None
        assert abs(got.memory.samples - ref.memory.samples) <= 2 + ref.memory.expected * 0.05, key


def test_p95_and_max_match_the_snapshot_summary(backfilled):
    spread, sim, result, business = backfilled
    want = summarize(sim.snapshot(), percentiles=PERCENTILES)
    rows = complete_rows(sim)
    assert len(rows) >= 10, "the scenario should have enough fully covered containers"
    for row in rows:
        key = sim.keys[row]
        got, ref = result.usage[key], want[key]
        assert got.memory.max == pytest.approx(ref.memory.max, rel=1e-6), key
        assert got.cpu.max == pytest.approx(ref.cpu.max, rel=0.03), key
        if spread == 0:
            assert got.memory.percentile(95) == pytest.approx(ref.memory.percentile(95), rel=1e-6), key
            assert got.cpu.percentile(95) == pytest.approx(ref.cpu.percentile(95), rel=0.03), key
        else:
            assert (1 - spread) * ref.memory.percentile(95) * (1 - 1e-6) <= got.memory.percentile(95) <= ref.memory.percentile(95) * (1 + 1e-6), key
            assert (1 - spread) * ref.cpu.percentile(95) * 0.97 <= got.cpu.percentile(95) <= ref.cpu.percentile(95) * 1.03, key


def test_requests_owners_and_nodes_match_the_inventory(backfilled):
    _, sim, result, business = backfilled
    checked = 0
    for workload in sim.state.workloads:
        for container in workload.containers:
            key = next((k for k in result.containers if k.workload == workload.ref and k.container == container.name),
                       None)
            if key is None:
                continue            # no running pod
            got = result.containers[key].resources
            checked += 1
            want = container.resources
            assert got.cpu_request == (None if want.cpu_request is None else pytest.approx(want.cpu_request)), key
            assert got.memory_request == want.memory_request and got.memory_limit == want.memory_limit, key
        if workload.hpa is not None:
            assert result.hpas[workload.ref].max_replicas == workload.hpa.max_replicas
    assert checked >= 20
    for node in sim.state.nodes:
        if node.name in result.nodes:
            assert result.nodes[node.name].allocatable_cpu == pytest.approx(node.allocatable_cpu)
    assert any(n.cpu is not None for n in result.nodes.values())


def test_time_window_live_matches_the_snapshot_path(backfilled):
    """The same simulation summarised over business hours by the snapshot path (``window_mask`` on the
    samples) and by the live scan (the filter on the server): the same figures, within the tolerances above."""
    spread, sim, result, business = backfilled
    want = summarize(sim.snapshot(), cpu_window=HOURS, memory_window=HOURS, percentiles=PERCENTILES)
    whole = summarize(sim.snapshot(), percentiles=PERCENTILES)
    rows = complete_rows(sim)
    differs = 0
    for row in rows:
        key = sim.keys[row]
        got, ref = business.usage[key], want[key]
        assert got.memory.max == pytest.approx(ref.memory.max, rel=1e-6), key
        assert got.cpu.max == pytest.approx(ref.cpu.max, rel=0.03), key
        assert got.memory.samples == ref.memory.samples and got.memory.coverage == pytest.approx(1.0), key
        assert got.memory.mean == pytest.approx(ref.memory.mean, rel=1e-6) if spread == 0 else True, key
        if spread == 0:
            assert got.memory.percentile(95) == pytest.approx(ref.memory.percentile(95), rel=1e-6), key
            assert got.cpu.percentile(95) == pytest.approx(ref.cpu.percentile(95), rel=0.03), key
        differs += whole[key].memory.max != ref.memory.max or whole[key].memory.mean != ref.memory.mean
    assert differs >= len(rows) // 2, "the window should change most containers' figures"
