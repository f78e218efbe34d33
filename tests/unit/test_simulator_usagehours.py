"""usage_hours: one row per pod container, hourly means of the series, requests, node presence, claims."""
from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from finops_operator.errors import ConfigError
from finops_operator.models import ContainerKey, WorkloadRef
from finops_operator.simulator import usage_hours
from finops_operator.simulator.usagehours import hourly_means
from finops_operator.snapshot import encode_meta, load_snapshot, save_snapshot

GI, MI = 2**30, 2**20
WEB = WorkloadRef("Deployment", "shop", "web")
CRUNCH = WorkloadRef("Deployment", "batch", "crunch")


@pytest.fixture(scope="module")
def hours(billed_simulation):
    return usage_hours(billed_simulation)


def rows_of(hours, pod_prefix: str, container: str) -> list[int]:
    return [i for i, c in enumerate(hours.containers) if c.pod.startswith(pod_prefix) and c.container == container]


def test_shapes_rows_and_nodes(billed_simulation, hours):
    assert len(hours.hours) == 48 and np.all(np.diff(hours.hours) == 3600)
    assert int(hours.hours[0]) == int(billed_simulation.state.window.end.timestamp()) - 48 * 3600
    # web: 2 pods x (web, proxy) -- the init container ran to completion; crunch: 2 pods x 1
    assert sorted((c.pod[:3], c.container) for c in hours.containers) == sorted(
        [("web", "web"), ("web", "proxy")] * 2 + [("cru", "crunch")] * 2)
    assert hours.cpu_usage.shape == hours.memory_request.shape == (6, 48)
    assert [n.instance_id for n in hours.nodes] == [n.instance_id for n in billed_simulation.state.nodes]
    names = [n.name for n in hours.nodes]
    for i, slot in enumerate(hours.containers):
        pod = next(p for p in billed_simulation.state.pods if p.name == slot.pod)
        assert names[hours.node_of[i]] == pod.node
    web = next(c for c in hours.containers if c.container == "web")
    assert web.workload == WEB and web.team == "shop" and web.namespace == "shop"


def test_node_present_from_created_at(billed_simulation, hours):
    late = next(i for i, n in enumerate(billed_simulation.state.nodes) if n.node_group == "late")
    assert hours.node_present[late].tolist() == [False] * 24 + [True] * 24
    others = np.delete(hours.node_present, late, axis=0)
    assert others.all()


def test_usage_is_the_hourly_mean_of_the_series(billed_simulation, hours):
    sim = billed_simulation
    row = sim.keys.index(ContainerKey(WEB, "web"))
    ts = sim.timestamps
    for h in (0, 7, 47):
        start = hours.hours[h]
        pick = (ts >= start) & (ts < start + 3600)
        assert pick.sum() == (11 if h == 0 else 12)             # the series starts one step into the window
        for i in rows_of(hours, "web-", "web"):                 # every replica carries the worst-replica series
            assert hours.cpu_usage[i, h] == pytest.approx(float(np.nanmean(sim.cpu[row, pick].astype(float))))
            assert hours.memory_usage[i, h] == pytest.approx(float(np.nanmean(sim.memory[row, pick].astype(float))))


def test_requests_from_the_inventory_and_nothing_before_the_node_existed(hours):
    for i in rows_of(hours, "web-", "web"):
        assert np.all(hours.cpu_request[i] == 0.5) and np.all(hours.memory_request[i] == GI)
    for i in rows_of(hours, "web-", "proxy"):
        assert np.all(hours.cpu_request[i] == 0.05) and np.all(hours.memory_request[i] == 64 * MI)
    for i in rows_of(hours, "crunch-", "crunch"):             # on the node that lived half the window
        for matrix in (hours.cpu_request, hours.cpu_usage, hours.memory_request, hours.memory_usage):
            assert np.isnan(matrix[i, :24]).all() and not np.isnan(matrix[i, 24:]).any()
        assert hours.cpu_usage[i, 24:] == pytest.approx(0.6, rel=0.2)


def test_claims_from_pvs_with_claims(hours):
    claims = {(c.namespace, c.name): c for c in hours.claims}
    assert set(claims) == {("shop", "data-0"), ("shop", "scratch")}
    assert claims["shop", "data-0"].volume_id == "vol-0bbbbbbbbbbbbbbb2"
    assert claims["shop", "data-0"].size_gib == 50 and claims["shop", "data-0"].volume_type == "gp2"
    assert hours.claim_present is None


def test_a_sub_window_and_a_backwards_window(billed_simulation, hours):
    end = billed_simulation.state.window.end
    part = usage_hours(billed_simulation, end - timedelta(hours=6), end)
    assert len(part.hours) == 6
    np.testing.assert_array_equal(part.cpu_usage, hours.cpu_usage[:, -6:])
    with pytest.raises(ConfigError) as err:
        usage_hours(billed_simulation, end, end - timedelta(hours=1))
    assert err.value.field == "end"


def test_from_a_snapshot_file_is_the_same(tmp_path, billed_simulation, hours):
    loaded = load_snapshot(save_snapshot(tmp_path / "c.npz", billed_simulation.snapshot()))
    again = usage_hours(loaded)
    assert again.containers == hours.containers and again.nodes == hours.nodes
    for name in ("cpu_request", "cpu_usage", "memory_request", "memory_usage", "node_present"):
        np.testing.assert_array_equal(getattr(again, name), getattr(hours, name))


def test_snapshot_keeps_instance_ids_and_reads_files_without_them(tmp_path, billed_simulation):
    snap = billed_simulation.snapshot()
    loaded = load_snapshot(save_snapshot(tmp_path / "c.npz", snap))
    assert [n.instance_id for n in loaded.state.nodes] == [n.instance_id for n in snap.state.nodes]
    assert all(n.instance_id for n in loaded.state.nodes)
    meta = encode_meta(snap)
    for n in meta["nodes"]:
        del n["instance_id"]                                 # a file written before instance ids
    old = tmp_path / "old.npz"
    np.savez_compressed(old, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                        timestamps=snap.timestamps, cpu=snap.cpu, memory=snap.memory, throttled=snap.throttled)
    assert [n.instance_id for n in load_snapshot(old).state.nodes] == [None] * len(snap.state.nodes)


def test_hourly_means_skip_gaps_and_empty_hours():
    ts = np.arange(0, 4 * 3600, 1800, dtype=np.int64)          # two samples per hour, 4 hours
    matrix = np.array([[1, 3, np.nan, 5, np.nan, np.nan, 2, 2]], dtype=np.float32)
    out = hourly_means(matrix, ts, np.arange(-3600, 4 * 3600, 3600, dtype=np.int64))
    np.testing.assert_array_equal(out, [[np.nan, 2, 5, np.nan, 2]])


def test_many_containers_are_vectorised(billed_simulation):
    """10,000 containers x 30 days is a benchmark (see the report); here: 2,000 rows x 30 days at 5 min."""
    import time
    rng = np.random.default_rng(0)
    ts = np.arange(0, 30 * 86400, 300, dtype=np.int64)
    matrix = rng.random((2000, len(ts)), dtype=np.float32)
    began = time.perf_counter()
    out = hourly_means(matrix, ts, np.arange(0, 30 * 86400, 3600, dtype=np.int64))
    assert out.shape == (2000, 720)
    assert out[5, 10] == pytest.approx(float(matrix[5, 120:132].mean()), rel=1e-5)
    assert time.perf_counter() - began < 20          # seconds, not minutes, even on a busy machine



def test_bursts_are_shrunk_to_fit_the_node_and_requests_are_untouched():
    import numpy as np

    from finops_operator.simulator.usagehours import fit_bursts
    request = np.array([[1.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    usage = np.array([[3.0, 1.5], [2.0, 0.5], [2.0, np.nan]])        # node 0 needs 5 then 2.5 of 4 cores
    fitted = fit_bursts(request, usage, np.array([0, 0, 1], dtype=np.int32), np.array([4.0, 8.0]))
    assert np.fmax(request[:2, 0], fitted[:2, 0]).sum() == pytest.approx(4.0)   # the full node, not more
    assert fitted[0, 0] == pytest.approx(1.0 + 2.0 * (2 / 3)) and fitted[1, 0] == pytest.approx(1.0 + 1.0 * (2 / 3))
    assert fitted[:2, 1].tolist() == [1.5, 0.5]                                  # it fitted: unchanged
    assert fitted[2, 0] == 2.0 and np.isnan(fitted[2, 1])                        # other node, gaps kept
