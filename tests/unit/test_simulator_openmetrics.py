"""OpenMetrics export: parseable by prometheus_client and promtool, worst-replica contract, counters."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections import defaultdict

import numpy as np
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from finops_operator.models import ContainerKey, WorkloadRef
from finops_operator.simulator import parse_scenario, simulate, write_openmetrics
from finops_operator.simulator.openmetrics import write_openmetrics_file

GI, MI = 2**30, 2**20
API = WorkloadRef("Deployment", "shop", "api")
CACHE = WorkloadRef("StatefulSet", "shop", "cache")

SPEC = {
    "cluster": "om", "days": 1, "stepSeconds": 300, "seed": 7, "end": "2026-11-20T00:00:00Z",
    "nodeGroups": [{"name": "general", "instanceType": "m5.xlarge", "count": 2, "zone": "us-east-1a"}],
    "workloads": [
        {"kind": "Deployment", "namespace": "shop", "name": "api", "replicas": 3,
         "hpa": {"minReplicas": 3, "maxReplicas": 9, "targetCPUUtilizationPercentage": 65},
         "containers": [{"name": "web", "requests": {"cpu": "300m", "memory": "512Mi"},
                         "limits": {"cpu": "400m", "memory": "1Gi"},
                         "cpu": {"pattern": "daily", "base": "300m", "amplitude": "150m"},
                         "memory": {"pattern": "steady", "base": "300Mi"}}]},
        {"kind": "StatefulSet", "namespace": "shop", "name": "cache", "replicas": 2,
         "containers": [{"name": "redis", "requests": {"cpu": "100m", "memory": "512Mi"},
                         "limits": {"memory": "512Mi"},
                         "cpu": {"pattern": "steady", "base": "50m"},
                         "memory": {"pattern": "leak", "base": "200Mi", "rate": "60Mi"}}]},
        {"kind": "DaemonSet", "namespace": "kube-system", "name": "agent",
         "containers": [{"name": "agent", "requests": {"cpu": "20m", "memory": "32Mi"}, "gaps": 0.1}]},
        {"kind": "CronJob", "namespace": "ops", "name": "backup",
         "containers": [{"name": "backup", "requests": {"cpu": "100m", "memory": "64Mi"}}]},
    ],
}


@pytest.fixture(scope="module")
def sim():
    return simulate(parse_scenario(SPEC, source="test"))


@pytest.fixture(scope="module")
def text(sim) -> str:
    out = io.StringIO()
    write_openmetrics(sim, out)
    return out.getvalue()


@pytest.fixture(scope="module")
def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def series(families, name: str, sample: str | None = None) -> dict[tuple, list[tuple[float, float]]]:
    """{sorted label items: [(timestamp, value), ...]} for one family."""
    out: dict[tuple, list] = defaultdict(list)
    for s in families[name].samples:
        if sample is None or s.name == sample:
            out[tuple(sorted(s.labels.items()))].append((float(s.timestamp), s.value))
    return out


def test_every_family_is_typed_once_and_not_interleaved(text, families):
    lines = text.splitlines()
    assert lines[-1] == "# EOF"
    typed = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert len(typed) == len(set(typed))
    order = []
    for line in lines:
        if not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            family = re.sub(r"_total$", "", name)
            if not order or order[-1] != family:
                order.append(family)
    assert len(order) == len(set(order)), "a family's samples are split"
    assert families["container_cpu_usage_seconds"].type == "counter"
    assert families["kube_pod_container_status_restarts"].type == "counter"
    assert families["container_memory_working_set_bytes"].type == "gauge"
    expected = {"container_cpu_cfs_periods", "container_cpu_cfs_throttled_periods", "kube_pod_info",
                "kube_pod_owner", "kube_replicaset_owner", "kube_job_owner", "kube_pod_container_resource_requests",
                "kube_pod_container_resource_limits", "kube_pod_container_status_last_terminated_reason",
                "kube_horizontalpodautoscaler_spec_min_replicas", "kube_horizontalpodautoscaler_spec_max_replicas",
                "kube_horizontalpodautoscaler_spec_target_metric", "kube_horizontalpodautoscaler_info",
                "kube_node_status_allocatable", "kube_node_labels"}
    assert expected <= set(families)


def test_samples_are_in_time_order_with_second_timestamps(families, sim):
    for name in ("container_cpu_usage_seconds", "container_memory_working_set_bytes", "kube_pod_info"):
        for points in series(families, name).values():
            times = [t for t, _ in points]
            assert times == sorted(times) and all(t == int(t) for t in times)
            assert set(times) <= set(sim.timestamps.tolist())


def pods_of(sim, ref):
    return sorted(p.name for p in sim.state.pods if p.owner == ref)


def test_max_across_pods_is_the_worst_replica_series(families, sim):
    row = sim.keys.index(ContainerKey(API, "web"))
    memory = series(families, "container_memory_working_set_bytes")
    cpu = series(families, "container_cpu_usage_seconds", "container_cpu_usage_seconds_total")
    mem_matrix, rate_matrix = [], []
    for pod in pods_of(sim, API):
        labels = (("container", "web"), ("namespace", "shop"), ("pod", pod))
        mem_matrix.append([v for _, v in memory[labels]])
        counter = np.array([v for _, v in cpu[labels]])
        rate_matrix.append(np.diff(counter) / 300.0)
    assert len(mem_matrix) == 3
    mem_matrix, rate_matrix = np.array(mem_matrix), np.array(rate_matrix)
    assert np.allclose(mem_matrix.max(axis=0), sim.memory[row], rtol=1e-6, atol=1)
    assert np.allclose(rate_matrix.max(axis=0), sim.cpu[row][1:], rtol=1e-6)
    assert (rate_matrix <= sim.cpu[row][1:] * (1 + 1e-6)).all()
    assert rate_matrix.min() < 0.95 * sim.cpu[row][1:].max()          # the others vary below it


def test_counters_are_monotonic_except_at_restarts(families, sim):
    cache_row = sim.keys.index(ContainerKey(CACHE, "redis"))
    restart_times = set(sim.timestamps[sim.restart_steps[cache_row]].tolist())
    assert restart_times
    for family in ("container_cpu_usage_seconds", "container_cpu_cfs_periods", "container_cpu_cfs_throttled_periods"):
        for labels, points in series(families, family, family + "_total").items():
            times, values = zip(*points)
            drops = {times[i] for i in range(1, len(values)) if values[i] < values[i - 1]}
            if dict(labels)["container"] == "redis":
                assert drops == restart_times, labels
            else:
                assert drops == set(), labels
    restarts = series(families, "kube_pod_container_status_restarts", "kube_pod_container_status_restarts_total")
    for pod in pods_of(sim, CACHE):
        values = [v for _, v in restarts[(("container", "redis"), ("namespace", "shop"), ("pod", pod))]]
        assert values == sorted(values) and values[-1] == len(restart_times)
    reasons = series(families, "kube_pod_container_status_last_terminated_reason")
    assert {dict(k)["pod"] for k in reasons} == set(pods_of(sim, CACHE))
    assert all(dict(k)["reason"] == "OOMKilled" for k in reasons)


def test_throttling_shows_in_cfs_counters(families, sim):
    periods = series(families, "container_cpu_cfs_periods", "container_cpu_cfs_periods_total")
    throttled = series(families, "container_cpu_cfs_throttled_periods", "container_cpu_cfs_throttled_periods_total")
    assert {dict(k)["container"] for k in periods} == {"web"}          # only containers with a CPU limit
    worst = max(throttled[k][-1][1] / periods[k][-1][1] for k in periods)
    row = sim.keys.index(ContainerKey(API, "web"))
    assert worst == pytest.approx(float(sim.throttled[row]), rel=0.1, abs=0.01)
    assert worst > 0.05


def test_owner_chain_and_requests(families, sim):
    owners = {dict(k)["pod"]: dict(k) for k in series(families, "kube_pod_owner")}
    rs_owner = {dict(k)["replicaset"]: dict(k) for k in series(families, "kube_replicaset_owner")}
    for pod in pods_of(sim, API):
        assert owners[pod]["owner_kind"] == "ReplicaSet"
        assert rs_owner[owners[pod]["owner_name"]]["owner_name"] == "api"
        assert pod.startswith(owners[pod]["owner_name"] + "-")
    assert {owners[p]["owner_kind"] for p in pods_of(sim, CACHE)} == {"StatefulSet"}
    job = next(p for p in sim.state.pods if p.owner.kind == "CronJob")
    job_owner = {dict(k)["job_name"]: dict(k) for k in series(families, "kube_job_owner")}
    assert job_owner[owners[job.name]["owner_name"]]["owner_name"] == "backup"
    requests = series(families, "kube_pod_container_resource_requests")
    pod = pods_of(sim, API)[0]
    node = next(p.node for p in sim.state.pods if p.name == pod)
    cpu = requests[tuple(sorted({"namespace": "shop", "pod": pod, "container": "web", "node": node,
                                 "resource": "cpu", "unit": "core"}.items()))]
    assert cpu[0][1] == pytest.approx(0.3)
    limits = series(families, "kube_pod_container_resource_limits")
    assert not any(dict(k)["container"] == "agent" for k in limits)
    hpa = {dict(k)["metric_name"]: v[0][1] for k, v in series(families, "kube_horizontalpodautoscaler_spec_target_metric").items()}
    assert hpa == {"cpu": 65.0}
    info = dict(next(iter(series(families, "kube_horizontalpodautoscaler_info"))))
    assert (info["scaletargetref_kind"], info["scaletargetref_name"]) == ("Deployment", "api")


def test_nodes_and_gaps(families, sim):
    labels = [dict(k) for k in series(families, "kube_node_labels")]
    assert {lab["label_node_kubernetes_io_instance_type"] for lab in labels} == {"m5.xlarge"}
    assert {lab["label_eks_amazonaws_com_nodegroup"] for lab in labels} == {"general"}
    alloc = {(dict(k)["node"], dict(k)["resource"]): v[0][1]
             for k, v in series(families, "kube_node_status_allocatable").items()}
    node = sim.state.nodes[0]
    assert alloc[(node.name, "cpu")] == pytest.approx(node.allocatable_cpu)
    assert alloc[(node.name, "memory")] == node.allocatable_memory
    agent_row = sim.keys.index(ContainerKey(WorkloadRef("DaemonSet", "kube-system", "agent"), "agent"))
    present = int((~np.isnan(sim.memory[agent_row])).sum())
    memory = series(families, "container_memory_working_set_bytes")
    agent = [v for k, v in memory.items() if dict(k)["container"] == "agent"]
    assert len(agent) == len(sim.state.nodes)
    assert all(len(points) == present < len(sim.timestamps) for points in agent)   # gaps emit nothing


def test_finer_sample_step_interpolates():
    sim = simulate(parse_scenario(SPEC | {"days": 0.25, "workloads": SPEC["workloads"][:1]}))
    out = io.StringIO()
    write_openmetrics(sim, out, sample_step=60)
    fams = {f.name: f for f in text_string_to_metric_families(out.getvalue())}
    memory = series(fams, "container_memory_working_set_bytes")
    pod = pods_of(sim, API)[0]
    points = memory[(("container", "web"), ("namespace", "shop"), ("pod", pod))]
    assert len(points) == (len(sim.timestamps) - 1) * 5 + 1
    times = np.array([t for t, _ in points])
    assert np.all(np.diff(times) == 60)
    worst = np.max([[v for _, v in memory[(("container", "web"), ("namespace", "shop"), ("pod", p))]]
                    for p in pods_of(sim, API)], axis=0)
    expected = np.interp(times, sim.timestamps, sim.memory[sim.keys.index(ContainerKey(API, "web"))])
    assert np.allclose(worst, expected, rtol=1e-6, atol=1)        # max across pods = interpolated series
    counter = series(fams, "container_cpu_usage_seconds", "container_cpu_usage_seconds_total")
    cpu = np.array([v for _, v in counter[(("container", "web"), ("namespace", "shop"), ("pod", pod))]])
    assert np.all(np.diff(cpu) > 0)
    with pytest.raises(ValueError, match="sample_step"):
        write_openmetrics(sim, io.StringIO(), sample_step=600)


class _Recorder(io.StringIO):
    largest = 0
    writes = 0

    def write(self, text: str) -> int:
        self.largest = max(self.largest, len(text))
        self.writes += 1
        return super().write(text)


def test_output_is_streamed_series_by_series(sim):
    out = _Recorder()
    count = write_openmetrics(sim, out)
    lines = out.getvalue().splitlines()
    assert count == sum(1 for line in lines if not line.startswith("#")) > 10_000
    longest_line = max(len(line) + 1 for line in lines)
    assert out.largest <= longest_line * len(sim.timestamps)      # at most one series per write
    assert out.writes > len({line.rsplit(" ", 2)[0] for line in lines if not line.startswith("#")})


def test_promtool_accepts_the_file(tmp_path, sim):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not on PATH: run tests/tools/install-prometheus.sh (Debian package 'prometheus')"
    path = tmp_path / "metrics.om"
    write_openmetrics_file(sim, path)
    result = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(tmp_path / "db")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (tmp_path / "db" / "wal").mkdir()                  # `tsdb dump` opens the WAL too
    pod = pods_of(sim, API)[0]
    dump = subprocess.run([promtool, "tsdb", "dump", f"--match=container_memory_working_set_bytes{{pod=\"{pod}\"}}",
                           str(tmp_path / "db")], capture_output=True, text=True, timeout=300)
    assert dump.returncode == 0, dump.stderr
    assert len(dump.stdout.strip().splitlines()) == len(sim.timestamps)


def test_write_to_a_path_matches_the_stream(tmp_path, sim, text):
    path = tmp_path / "out.om"
    count = write_openmetrics(sim, path)
    assert path.read_text() == text
    assert count == sum(1 for line in text.splitlines() if not line.startswith("#"))
    assert [p.name for p in tmp_path.iterdir()] == ["out.om"]
