"""Snapshot files: exact round trip, and every way a file can be wrong gives a SnapshotError."""
from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest

from finops_operator.errors import SnapshotError
from finops_operator.models import ContainerKey, WorkloadRef
from finops_operator.snapshot import FORMAT, Snapshot, encode_meta, load_snapshot, save_snapshot


@pytest.fixture
def snapshot(small_simulation) -> Snapshot:
    snap = small_simulation.snapshot()
    # private copies: tests mutate them
    return dataclasses.replace(snap, cpu=snap.cpu.copy(), memory=snap.memory.copy(),
                               throttled=snap.throttled.copy(), timestamps=snap.timestamps.copy())


def write_raw(path, snap: Snapshot, *, meta: dict | None = None, drop: str | None = None, compressed: bool = True,
              **arrays) -> None:
    """Write an npz the way save_snapshot does, but without its checks (to build broken files); every member
    deflated (as older writers did) or, with ``compressed=False``, every member stored (mapped on load)."""
    content = {"meta": np.frombuffer(json.dumps(meta or encode_meta(snap)).encode(), dtype=np.uint8),
               "timestamps": snap.timestamps, "cpu": snap.cpu, "memory": snap.memory, "throttled": snap.throttled}
    content |= arrays
    content.pop(drop, None)
    (np.savez_compressed if compressed else np.savez)(path, **content)


def load_error(path) -> SnapshotError:
    with pytest.raises(SnapshotError) as info:
        load_snapshot(path)
    assert info.value.source == str(path)
    return info.value


def test_round_trip_is_exact(tmp_path, snapshot):
    path = save_snapshot(tmp_path / "cluster.npz", snapshot)
    loaded = load_snapshot(path)
    assert loaded.keys == snapshot.keys
    for name in ("timestamps", "cpu", "memory", "throttled"):
        assert getattr(loaded, name).dtype == getattr(snapshot, name).dtype
        assert np.array_equal(getattr(loaded, name), getattr(snapshot, name), equal_nan=True), name
    state, original = loaded.state, snapshot.state
    assert (state.cluster, state.region, state.window) == (original.cluster, original.region, original.window)
    assert state.workloads == original.workloads
    assert state.pods == original.pods
    assert state.nodes == original.nodes            # includes node usage stats and created_at
    assert state.pdbs == original.pdbs and state.volumes == original.volumes
    assert state.node_groups == original.node_groups
    assert state.usage == {}
    assert loaded.index()[ContainerKey(WorkloadRef("StatefulSet", "data", "redis"), "redis")] == 2
    assert np.isnan(loaded.cpu).any()               # gaps survive


def test_the_file_is_a_plain_npz_without_pickles(tmp_path, snapshot):
    path = save_snapshot(tmp_path / "cluster.npz", snapshot)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["cpu", "memory", "meta", "throttled", "timestamps"]
        meta = json.loads(npz["meta"].tobytes())
    assert meta["format"] == FORMAT == "finops-snapshot/v1"
    assert meta["window"]["stepSeconds"] == 300
    assert meta["containers"][0] == {"workload": {"kind": "Deployment", "namespace": "payments",
                                                  "name": "payments-api"}, "container": "api"}
    assert {"workloads", "pods", "nodes", "pdbs", "volumes", "cluster", "region"} <= set(meta)


def test_missing_file(tmp_path):
    err = load_error(tmp_path / "nope.npz")
    assert "no such file" in err.message


def test_not_a_snapshot(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello")
    assert "not a finops snapshot" in load_error(path).message
    other = tmp_path / "other.npz"
    np.savez_compressed(other, x=np.zeros(3))
    err = load_error(other)
    assert "not a finops snapshot" in err.message and err.field == "meta"


@pytest.mark.parametrize("array", ["cpu", "memory", "throttled", "timestamps"])
def test_missing_array(tmp_path, snapshot, array):
    path = tmp_path / "s.npz"
    write_raw(path, snapshot, drop=array)
    assert load_error(path).field == array


def test_wrong_format_version(tmp_path, snapshot):
    meta = encode_meta(snapshot) | {"format": "finops-snapshot/v0"}
    write_raw(tmp_path / "s.npz", snapshot, meta=meta)
    err = load_error(tmp_path / "s.npz")
    assert err.field == "meta.format" and "finops-snapshot/v0" in err.message


def test_meta_not_json(tmp_path, snapshot):
    path = tmp_path / "s.npz"
    np.savez_compressed(path, meta=np.frombuffer(b"{not json", dtype=np.uint8), timestamps=snapshot.timestamps,
                        cpu=snapshot.cpu, memory=snapshot.memory, throttled=snapshot.throttled)
    assert load_error(path).field == "meta"


@pytest.mark.parametrize("mutate, field", [
    (lambda m: m.pop("window"), "meta.window"),
    (lambda m: m["window"].pop("stepSeconds"), "meta.window"),
    (lambda m: m.pop("containers"), "meta.containers"),
    (lambda m: m["workloads"][1].pop("replicas"), "meta.workloads[1].replicas"),
    (lambda m: m["workloads"][0]["containers"][0]["resources"].update(cpu_request="one"),
     "meta.workloads[0].containers[0].resources.cpu_request"),
    (lambda m: m["pods"][0].pop("namespace"), "meta.pods[0].namespace"),
    (lambda m: m["volumes"][0].update(source="s3"), "meta.volumes[0].source"),
    (lambda m: m["nodes"][2].update(created_at="yesterday"), "meta.nodes[2].created_at"),
    (lambda m: m["containers"][1].pop("container"), "meta.containers[1].container"),
])
def test_missing_or_bad_fields_are_named(tmp_path, snapshot, mutate, field):
    meta = encode_meta(snapshot)
    mutate(meta)
    write_raw(tmp_path / "s.npz", snapshot, meta=meta)
    assert load_error(tmp_path / "s.npz").field == field


def test_shape_mismatch_between_keys_and_arrays(tmp_path, snapshot):
    write_raw(tmp_path / "s.npz", snapshot, cpu=snapshot.cpu[:-1])
    err = load_error(tmp_path / "s.npz")
    assert err.field == "cpu" and "does not match" in err.message
    write_raw(tmp_path / "t.npz", snapshot, memory=snapshot.memory[:, :-1])
    assert load_error(tmp_path / "t.npz").field == "memory"
    write_raw(tmp_path / "u.npz", snapshot, throttled=snapshot.throttled[:2])
    assert load_error(tmp_path / "u.npz").field == "throttled"


def test_timestamps_not_evenly_spaced(tmp_path, snapshot):
    ts = snapshot.timestamps.copy()
    ts[10:] += 60
    ts[-1] = snapshot.timestamps[-1]
    write_raw(tmp_path / "s.npz", snapshot, timestamps=ts)
    err = load_error(tmp_path / "s.npz")
    assert err.field == "timestamps" and "not evenly spaced" in err.message


def test_timestamps_not_matching_the_window(tmp_path, snapshot):
    write_raw(tmp_path / "s.npz", snapshot, timestamps=snapshot.timestamps + 300)
    err = load_error(tmp_path / "s.npz")
    assert err.field == "timestamps" and "meta.window" in err.message


@pytest.mark.parametrize("compressed", [True, False])
def test_negative_usage_names_the_container(tmp_path, snapshot, compressed):
    snapshot.memory[3, 7] = -1.0
    write_raw(tmp_path / "s.npz", snapshot, compressed=compressed)
    err = load_error(tmp_path / "s.npz")
    assert err.field == "memory" and str(snapshot.keys[3]) in err.message


def test_container_without_a_series_row(tmp_path, snapshot):
    meta = encode_meta(snapshot)
    meta["containers"].pop(1)
    write_raw(tmp_path / "s.npz", snapshot, meta=meta, cpu=np.delete(snapshot.cpu, 1, axis=0),
              memory=np.delete(snapshot.memory, 1, axis=0), throttled=np.delete(snapshot.throttled, 1))
    err = load_error(tmp_path / "s.npz")
    assert err.field == "meta.workloads" and "payments-api/istio-proxy has no series row" in err.message


def test_series_row_without_a_container(tmp_path, snapshot):
    meta = encode_meta(snapshot)
    meta["containers"][1]["container"] = "ghost"
    write_raw(tmp_path / "s.npz", snapshot, meta=meta)
    err = load_error(tmp_path / "s.npz")
    assert err.field == "meta.containers[1]" and "ghost" in err.message


def test_nan_gaps_are_allowed(tmp_path, snapshot):
    snapshot.cpu[0, 100:200] = np.nan
    loaded = load_snapshot(save_snapshot(tmp_path / "s.npz", snapshot))
    assert np.isnan(loaded.cpu[0, 100:200]).all()


def test_save_refuses_bad_data_and_writes_nothing(tmp_path, snapshot):
    snapshot.cpu[0, 0] = -0.5
    target = tmp_path / "s.npz"
    with pytest.raises(SnapshotError, match="negative usage") as info:
        save_snapshot(target, snapshot)
    assert info.value.source == str(target)
    assert list(tmp_path.iterdir()) == []


def test_save_into_a_missing_directory_is_a_clear_error(tmp_path, snapshot):
    with pytest.raises(SnapshotError, match="cannot write"):
        save_snapshot(tmp_path / "no" / "such" / "dir.npz", snapshot)


def test_save_replaces_atomically(tmp_path, snapshot):
    target = tmp_path / "s.npz"
    save_snapshot(target, snapshot)
    first = target.read_bytes()
    snapshot.cpu[0, 0] = 9.0
    save_snapshot(target, snapshot)
    assert target.read_bytes() != first and [p.name for p in tmp_path.iterdir()] == ["s.npz"]
    assert load_snapshot(target).cpu[0, 0] == 9.0
    with zipfile.ZipFile(io.BytesIO(target.read_bytes())) as archive:
        kinds = {info.filename: info.compress_type for info in archive.infolist()}
    assert kinds == {"meta.npy": zipfile.ZIP_DEFLATED, "timestamps.npy": zipfile.ZIP_DEFLATED,
                     "cpu.npy": zipfile.ZIP_STORED, "memory.npy": zipfile.ZIP_STORED,
                     "throttled.npy": zipfile.ZIP_DEFLATED}


def test_the_matrices_are_memory_mapped_read_only_and_stream_in_row_blocks(tmp_path, snapshot):
    loaded = load_snapshot(save_snapshot(tmp_path / "s.npz", snapshot))
    assert isinstance(loaded.cpu, np.memmap) and isinstance(loaded.memory, np.memmap)
    with pytest.raises(ValueError):
        loaded.cpu[0, 0] = 1.0
    for name in ("cpu", "memory"):
        blocks = list(loaded.row_blocks(name, 4))
        assert [start for start, _ in blocks] == list(range(0, len(loaded.keys), 4))
        joined = np.concatenate([block for _, block in blocks])       # read again after each release
        assert np.array_equal(joined, getattr(snapshot, name), equal_nan=True)


def _rss_file_kib() -> int:
    """Resident file-backed pages of this process (mapped snapshot pages count here), KiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssFile:"))


def test_a_full_pass_over_a_mapped_matrix_keeps_one_block_resident(tmp_path):
    from datetime import datetime, timezone

    from finops_operator.models import ClusterState, Container, Window, Workload
    rows, points, step = 2048, 4032, 300                   # 33 MB of float32 per matrix
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)
    ts = int(start.timestamp()) + step * np.arange(points, dtype=np.int64)
    ref = WorkloadRef("Deployment", "ns", "app")
    keys = [ContainerKey(ref, f"c{i}") for i in range(rows)]
    window = Window(start, datetime.fromtimestamp(int(ts[-1]), timezone.utc), step)
    state = ClusterState("c", "r", window, [Workload(ref, 1, [Container(k.container) for k in keys])])
    matrix = np.random.default_rng(1).random((rows, points), dtype=np.float32)
    path = save_snapshot(tmp_path / "big.npz", Snapshot(state, keys, ts, matrix, matrix, np.zeros(rows, np.float32)))
    del matrix
    before = _rss_file_kib()
    loaded = load_snapshot(path)                           # validation streams both matrices
    peak, total = _rss_file_kib() - before, 0.0
    for _, block in loaded.row_blocks("cpu", 256):         # 4 MB blocks
        total += float(block.sum(dtype=np.float64))
        peak = max(peak, _rss_file_kib() - before)
    assert total > 0 and peak < 12 * 1024, f"{peak} KiB of the mapped matrices stayed resident"


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_a_truncated_stored_file_is_a_snapshot_error_not_a_crash(tmp_path, snapshot, cut):
    path = save_snapshot(tmp_path / "s.npz", snapshot)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])
    assert load_error(path).source == str(path)


def _tamper_cpu_header(path, snapshot, replace) -> None:
    data = bytearray(path.read_bytes())
    header = data.index(b"{'descr'", data.index(b"cpu.npy"))      # the cpu member's .npy header
    shape = f"({len(snapshot.keys)}, {snapshot.timestamps.size})".encode()
    at = data.index(shape, header)
    data[at:at + len(shape)] = replace(shape)
    path.write_bytes(bytes(data))


def test_a_stored_member_claiming_more_than_it_holds_is_refused(tmp_path, snapshot):
    path = save_snapshot(tmp_path / "s.npz", snapshot)
    rows = str(len(snapshot.keys))
    _tamper_cpu_header(path, snapshot, lambda shape: shape.replace(rows.encode(), b"9" * len(rows), 1))
    err = load_error(path)
    assert err.field == "cpu" and "header claims" in err.message


def test_a_garbled_array_header_is_a_snapshot_error(tmp_path, snapshot):
    path = save_snapshot(tmp_path / "s.npz", snapshot)
    _tamper_cpu_header(path, snapshot, lambda shape: b"(" * len(shape))     # unbalanced: numpy's tokenizer fails
    assert "not a finops snapshot" in load_error(path).message


@pytest.mark.parametrize("compressed", [True, False])
def test_deflated_and_stored_files_read_the_same(tmp_path, snapshot, compressed):
    write_raw(tmp_path / "s.npz", snapshot, compressed=compressed)
    loaded = load_snapshot(tmp_path / "s.npz")
    assert isinstance(loaded.cpu, np.memmap) is not compressed
    assert np.array_equal(loaded.memory, snapshot.memory, equal_nan=True)
    assert loaded.state.nodes == snapshot.state.nodes


def _with_node_pools(snapshot: Snapshot) -> Snapshot:
    from finops_operator.models import ConsolidationPolicy, DisruptionBudget, NodePool
    snapshot.state.node_pools = [
        NodePool("general", ConsolidationPolicy.WHEN_EMPTY, "30m", {"cpu": "400"},
                 [DisruptionBudget("10%"), DisruptionBudget("0", ["Drifted"], "0 9 * * 1-5", "8h")]),
        NodePool("batch")]
    return snapshot


def test_node_pools_round_trip(tmp_path, snapshot):
    snap = _with_node_pools(snapshot)
    loaded = load_snapshot(save_snapshot(tmp_path / "pools.npz", snap))
    assert loaded.state.node_pools == snap.state.node_pools
    assert encode_meta(snap)["nodePools"][0]["consolidation_policy"] == "WhenEmpty"


@pytest.mark.parametrize("mutate, field", [
    (lambda m: m["nodePools"][0].update(consolidation_policy="WhenUnderutilized"),
     "meta.nodePools[0].consolidation_policy"),
    (lambda m: m["nodePools"][0]["budgets"][1].pop("nodes"), "meta.nodePools[0].budgets[1].nodes"),
    (lambda m: m["nodePools"][1].update(limits=["cpu"]), "meta.nodePools[1].limits"),
])
def test_bad_node_pools_are_named(tmp_path, snapshot, mutate, field):
    meta = encode_meta(_with_node_pools(snapshot))
    mutate(meta)
    write_raw(tmp_path / "s.npz", snapshot, meta=meta)
    error = load_error(tmp_path / "s.npz")
    assert error.field == field
