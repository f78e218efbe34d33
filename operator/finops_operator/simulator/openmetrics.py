"""Stream a simulation as OpenMetrics text for ``promtool tsdb create-blocks-from openmetrics``.

Label contract (real cAdvisor / kube-state-metrics v2 names; the Prometheus
adapter in ``finops_operator.sources`` queries exactly these). Every series is
per POD, sampled on the same grid (the snapshot step, or ``sample_step``):

cAdvisor (only pods that are Running on a node; no sample where the snapshot has a gap)
  container_cpu_usage_seconds_total{namespace,pod,container}       counter, core-seconds;
        restarts at 0 when the container restarts (OOM kill). rate() = cores.
  container_memory_working_set_bytes{namespace,pod,container}       gauge, bytes
  container_cpu_cfs_periods_total{namespace,pod,container}          counter, 10 periods/s
  container_cpu_cfs_throttled_periods_total{namespace,pod,container} counter
        (both only for containers with a CPU limit; reset with the container)
kube-state-metrics (every pod, Pending ones too, node="" when unscheduled)
  kube_pod_info{namespace,pod,node,created_by_kind,created_by_name}                     1
  kube_pod_owner{namespace,pod,owner_kind,owner_name,owner_is_controller="true"}        1
        owner_kind: ReplicaSet (Deployments) | StatefulSet | DaemonSet | Job (CronJobs)
  kube_replicaset_owner{namespace,replicaset,owner_kind="Deployment",owner_name,owner_is_controller}  1
  kube_job_owner{namespace,job_name,owner_kind="CronJob",owner_name,owner_is_controller}           1
  kube_pod_container_resource_requests{namespace,pod,container,node,resource="cpu"|"memory",unit="core"|"byte"}
  kube_pod_container_resource_limits{... same labels ...}   (only resources that are set)
  kube_pod_container_status_restarts_total{namespace,pod,container}  counter (never resets)
  kube_pod_container_status_last_terminated_reason{namespace,pod,container,reason="OOMKilled"}
        1 from the first OOM kill on (only containers that were killed)
  kube_horizontalpodautoscaler_spec_min_replicas / _spec_max_replicas /
  kube_horizontalpodautoscaler_status_current_replicas{namespace,horizontalpodautoscaler}
  kube_horizontalpodautoscaler_spec_target_metric{namespace,horizontalpodautoscaler,
        metric_name="cpu"|"memory",metric_target_type="utilization"}   percent
  kube_horizontalpodautoscaler_info{namespace,horizontalpodautoscaler,scaletargetref_api_version="apps/v1",
        scaletargetref_kind,scaletargetref_name}   1
  kube_deployment_spec_replicas{namespace,deployment}, kube_statefulset_replicas{namespace,statefulset},
  kube_daemonset_status_desired_number_scheduled{namespace,daemonset}
  kube_node_info{node,provider_id="aws:///<zone>/i-...",internal_ip,os_image,kubelet_version,
        container_runtime_version}   1
  kube_node_status_allocatable{node,resource="cpu"|"memory"|"pods",unit="core"|"byte"|"integer"}
  kube_node_labels{node,label_node_kubernetes_io_instance_type,label_eks_amazonaws_com_nodegroup,
        label_topology_kubernetes_io_zone,label_eks_amazonaws_com_capacity_type,...}   1
        (every node label, name sanitised: label_ + [^a-zA-Z0-9_] -> _)
  kube_node_annotations{node,annotation_...}  1 (nodes with annotations)
  kube_node_spec_unschedulable{node}          0/1

Node lifetimes: a node created inside the window (``created_at``) has no
series before it, and neither have the pods placed on it (cAdvisor and
kube-state-metrics alike), so node presence and its pods agree with the bill.

Worst replica: the snapshot keeps, per container, the worst replica at each
step. Here every pod of a workload gets ``series x f`` with ``f`` drawn in
``[1 - spread, 1]`` per pod and step, and at each step one pod (chosen at
random) gets ``f = 1`` — so the MAX across a workload's pods at each step
equals the snapshot series exactly, and no pod ever exceeds it. Containers
that were OOM-killed use ``f = 1`` for memory on every pod (all replicas leak
alike), and their restarts are at the same steps on every pod. The throttled
share of a pod is the container's per-step share x ``f``.

With ``sample_step`` finer than the snapshot step, values are interpolated
linearly between snapshot points (a point next to a gap is a gap). Families are
written one after the other (never interleaved), each series in time order,
timestamps in whole seconds, ``# EOF`` last; the text is streamed series by
series, never built whole in memory.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

import numpy as np

from ..models import ContainerKey, Pod, Resources, WorkloadRef
from .engine import Simulation
from .placement import INSTANCE_TYPES, job_name, present_at, provider_id, replicaset_name, seed_of

CFS_PERIODS_PER_SECOND = 10.0      # default cpu.cfs_period_us = 100ms


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _sanitise(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


@dataclass(slots=True)
class _Grid:
    """Output times and how they map onto the snapshot grid."""

    times: np.ndarray     # int64 seconds
    step: float           # seconds between output samples
    coarse: np.ndarray    # snapshot timestamps

    def resample(self, series: np.ndarray) -> np.ndarray:
        if len(self.times) == len(self.coarse):
            return series.astype(np.float64)
        values = np.interp(self.times, self.coarse, np.nan_to_num(series.astype(np.float64)))
        left = np.clip(np.searchsorted(self.coarse, self.times, side="right") - 1, 0, len(self.coarse) - 1)
        right = np.clip(left + 1, 0, len(self.coarse) - 1)
        missing = np.isnan(series)
        return np.where(missing[left] | missing[right], np.nan, values)

    def index_of(self, coarse_steps: np.ndarray) -> np.ndarray:
        """First output index at or after each snapshot index."""
        return np.searchsorted(self.times, self.coarse[coarse_steps], side="left")


class _Writer:
    def __init__(self, sim: Simulation, out: TextIO, grid: _Grid, spread: float):
        self.sim, self.out, self.grid, self.spread = sim, out, grid, spread
        self.samples = 0
        self.rows = {key: row for row, key in enumerate(sim.keys)}
        self.workloads = {wl.ref: wl for wl in sim.state.workloads}
        self.workload = self.workloads.__getitem__
        self.pods: dict[WorkloadRef, list[Pod]] = {}
        for pod in sim.state.pods:
            self.pods.setdefault(pod.owner, []).append(pod)
        self.alive = {n.name: present_at(n, grid.times) for n in sim.state.nodes}
        self.alive = {name: mask for name, mask in self.alive.items() if not mask.all()}   # mid-window nodes only

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.out.write(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")

    def series(self, name: str, labels: str, values: np.ndarray) -> None:
        keep = ~np.isnan(values)
        if not keep.any():
            return
        prefix = name + labels + " "
        self.out.write("".join(f"{prefix}{v:.12g} {t}\n" for v, t in zip(values[keep].tolist(),
                                                                       self.grid.times[keep].tolist())))
        self.samples += int(keep.sum())

    def constant(self, name: str, labels: str, value: float, node: str | None = None) -> None:
        """A constant series, from ``node``'s creation on when it names a node created in the window."""
        values = np.full(len(self.grid.times), float(value))
        self.series(name, labels, self.on_node(values, node))

    def on_node(self, values: np.ndarray, node: str | None) -> np.ndarray:
        """``values`` with gaps where ``node`` did not exist yet."""
        alive = self.alive.get(node) if node else None
        return values if alive is None else np.where(alive, values, np.nan)

    def resources(self, key: ContainerKey) -> Resources:
        return self.workload(key.workload).container(key.container).resources

    def running(self, ref: WorkloadRef) -> list[Pod]:
        return [p for p in self.pods.get(ref, []) if p.node and p.phase == "Running"]

    def factors(self, ref: WorkloadRef, container: str, resource: str, pods: int) -> np.ndarray:
        """[pods, points] multipliers in [1 - spread, 1]; one pod per step is exactly 1."""
        rng = np.random.default_rng(seed_of(self.sim.spec.seed, ref, container, resource, "pods"))
        points = len(self.grid.times)
        f = 1.0 - rng.uniform(0.0, self.spread, size=(pods, points))
        f[rng.integers(0, pods, size=points), np.arange(points)] = 1.0
        return f

    def pod_rows(self, resource: str) -> Iterator[tuple[Pod, str, int, np.ndarray, np.ndarray]]:
        """(pod, container, row, worst-replica values, this pod's factors) on the output grid."""
        matrix = self.sim.cpu if resource == "cpu" else self.sim.memory
        for w in self.sim.state.workloads:
            pods = self.running(w.ref)
            if not pods:
                continue
            for c in w.containers:
                row = self.rows[ContainerKey(w.ref, c.name)]
                base = self.grid.resample(matrix[row])
                same = resource == "memory" and row in self.sim.restart_steps
                f = np.ones((len(pods), len(base))) if same else self.factors(w.ref, c.name, resource, len(pods))
                for i, pod in enumerate(pods):
                    yield pod, c.name, row, self.on_node(base, pod.node), f[i]

    def counter(self, increments: np.ndarray, row: int) -> np.ndarray:
        """Cumulative sum of increments, restarting at 0 where the container restarted.

        A scrape gap (NaN) emits no sample; the counter does not advance over it.
        """
        inc = np.nan_to_num(increments)
        inc[0] = 0.0
        total = np.cumsum(inc)
        restarts = self.sim.restart_steps.get(row)
        if restarts is not None and len(restarts):
            starts = np.unique(self.grid.index_of(restarts))
            starts = starts[(starts > 0) & (starts < len(total))]
            segment = np.searchsorted(starts, np.arange(len(total)), side="right")
            offsets = np.concatenate(([0.0], total[starts - 1]))
            total = total - offsets[segment]
        return np.where(np.isnan(increments), np.nan, total)


def _container_labels(pod: Pod, container: str) -> str:
    return _labels(namespace=pod.namespace, pod=pod.name, container=container)


def _cadvisor(w: _Writer) -> None:
    dt = w.grid.step
    w.family("container_cpu_usage_seconds", "counter", "Cumulative cpu time consumed in seconds.")
    for pod, container, row, cores, f in w.pod_rows("cpu"):
        w.series("container_cpu_usage_seconds_total", _container_labels(pod, container),
                 w.counter(cores * f * dt, row))
    w.family("container_memory_working_set_bytes", "gauge", "Current working set in bytes.")
    for pod, container, row, memory, f in w.pod_rows("memory"):
        w.series("container_memory_working_set_bytes", _container_labels(pod, container), np.round(memory * f))
    limited = {row for row, key in enumerate(w.sim.keys) if w.resources(key).cpu_limit}
    zeros = np.zeros(len(w.sim.timestamps), dtype=np.float32)
    for family, help_text in (("container_cpu_cfs_periods", "Number of elapsed enforcement period intervals."),
                              ("container_cpu_cfs_throttled_periods", "Number of throttled period intervals.")):
        w.family(family, "counter", help_text)
        for pod, container, row, cores, f in w.pod_rows("cpu"):
            if row not in limited:
                continue
            periods = np.where(np.isnan(cores), np.nan, dt * CFS_PERIODS_PER_SECOND)
            if family == "container_cpu_cfs_throttled_periods":
                periods = periods * w.grid.resample(w.sim.throttle_steps.get(row, zeros)) * f
            w.series(family + "_total", _container_labels(pod, container), np.round(w.counter(periods, row)))


def _owner(w: _Writer, pod: Pod) -> tuple[str, str]:
    ref = pod.owner
    if ref.kind == "Deployment":
        return "ReplicaSet", replicaset_name(w.sim.spec.seed, ref)
    if ref.kind == "CronJob":
        return "Job", job_name(ref.name, w.sim.state.window.end)
    return ref.kind, ref.name


def _pods(w: _Writer) -> None:
    pods = [p for p in w.sim.state.pods if p.owner is not None]
    w.family("kube_pod_info", "gauge", "Information about pod.")
    for pod in pods:
        kind, name = _owner(w, pod)
        w.constant("kube_pod_info", _labels(namespace=pod.namespace, pod=pod.name, node=pod.node or "",
                                            created_by_kind=kind, created_by_name=name), 1, pod.node)
    w.family("kube_pod_owner", "gauge", "Information about the Pod's owner.")
    for pod in pods:
        kind, name = _owner(w, pod)
        w.constant("kube_pod_owner", _labels(namespace=pod.namespace, pod=pod.name, owner_kind=kind,
                                             owner_name=name, owner_is_controller="true"), 1, pod.node)
    for family, kind, label, owner in (("kube_replicaset_owner", "Deployment", "replicaset", "ReplicaSet"),
                                       ("kube_job_owner", "CronJob", "job_name", "Job")):
        w.family(family, "gauge", f"Information about the {owner}'s owner.")
        for wl in (x for x in w.sim.state.workloads if x.ref.kind == kind):
            child = replicaset_name(w.sim.spec.seed, wl.ref) if kind == "Deployment" \
                else job_name(wl.ref.name, w.sim.state.window.end)
            w.constant(family, _labels(namespace=wl.ref.namespace, **{label: child}, owner_kind=kind,
                                       owner_name=wl.ref.name, owner_is_controller="true"), 1)


def _resources(w: _Writer) -> None:
    for family, prefix in (("kube_pod_container_resource_requests", "request"),
                           ("kube_pod_container_resource_limits", "limit")):
        w.family(family, "gauge", f"The number of {prefix}ed resource by a container.")
        for pod in (p for p in w.sim.state.pods if p.owner is not None):
            for c in w.workload(pod.owner).containers:
                for resource, unit in (("cpu", "core"), ("memory", "byte")):
                    value = getattr(c.resources, f"{resource}_{prefix}")
                    if value is not None:
                        w.constant(family, _labels(namespace=pod.namespace, pod=pod.name, container=c.name,
                                                   node=pod.node or "", resource=resource, unit=unit), value,
                                   pod.node)


def _restarts(w: _Writer) -> None:
    w.family("kube_pod_container_status_restarts", "counter", "The number of container restarts per container.")
    for pod in (p for p in w.sim.state.pods if p.owner is not None):
        for c in w.workload(pod.owner).containers:
            count = np.zeros(len(w.grid.times))
            restarts = w.sim.restart_steps.get(w.rows[ContainerKey(pod.owner, c.name)])
            if restarts is not None:
                for index in w.grid.index_of(restarts):
                    count[index:] += 1
            w.series("kube_pod_container_status_restarts_total", _container_labels(pod, c.name),
                     w.on_node(count, pod.node))
    w.family("kube_pod_container_status_last_terminated_reason", "gauge",
             "Describes the last reason the container was in terminated state.")
    for pod in (p for p in w.sim.state.pods if p.owner is not None):
        for c in w.workload(pod.owner).containers:
            restarts = w.sim.restart_steps.get(w.rows[ContainerKey(pod.owner, c.name)])
            if restarts is not None and len(restarts):
                values = np.full(len(w.grid.times), np.nan)
                values[w.grid.index_of(restarts[:1])[0]:] = 1.0
                w.series("kube_pod_container_status_last_terminated_reason",
                         _labels(namespace=pod.namespace, pod=pod.name, container=c.name, reason="OOMKilled"), values)


def _workloads(w: _Writer) -> None:
    hpas = [(wl.ref, wl.hpa) for wl in w.sim.state.workloads if wl.hpa is not None]
    prefix = "kube_horizontalpodautoscaler_"
    for suffix, attr in (("spec_min_replicas", "min_replicas"), ("spec_max_replicas", "max_replicas"),
                         ("status_current_replicas", "current_replicas")):
        w.family(prefix + suffix, "gauge", f"HPA {suffix.replace('_', ' ')}.")
        for ref, hpa in hpas:
            value = getattr(hpa, attr)
            if value is not None:
                w.constant(prefix + suffix, _labels(namespace=ref.namespace, horizontalpodautoscaler=hpa.name), value)
    w.family(prefix + "spec_target_metric", "gauge", "The metric specifications used by this autoscaler.")
    for ref, hpa in hpas:
        for metric, value in (("cpu", hpa.target_cpu_utilization), ("memory", hpa.target_memory_utilization)):
            if value is not None:
                w.constant(prefix + "spec_target_metric", _labels(namespace=ref.namespace,
                           horizontalpodautoscaler=hpa.name, metric_name=metric,
                           metric_target_type="utilization"), value)
    w.family(prefix + "info", "gauge", "Information about this autoscaler.")
    for ref, hpa in hpas:
        w.constant(prefix + "info", _labels(namespace=ref.namespace, horizontalpodautoscaler=hpa.name,
                   scaletargetref_api_version="apps/v1", scaletargetref_kind=ref.kind,
                   scaletargetref_name=ref.name), 1)
    for family, kind, label in (("kube_deployment_spec_replicas", "Deployment", "deployment"),
                                ("kube_statefulset_replicas", "StatefulSet", "statefulset"),
                                ("kube_daemonset_status_desired_number_scheduled", "DaemonSet", "daemonset")):
        w.family(family, "gauge", f"Desired number of pods of a {kind}.")
        for wl in (x for x in w.sim.state.workloads if x.ref.kind == kind):
            count = sum(1 for p in w.pods.get(wl.ref, [])) if kind == "DaemonSet" else wl.replicas
            w.constant(family, _labels(namespace=wl.ref.namespace, **{label: wl.ref.name}), count)


def _node_ip(name: str) -> str:
    """``ip-10-1-2-3.ec2.internal`` -> ``10.1.2.3`` (other names: empty)."""
    head = name.split(".")[0]
    parts = head.split("-")[1:]
    return ".".join(parts) if head.startswith("ip-") and len(parts) == 4 else ""


def _nodes(w: _Writer) -> None:
    nodes = w.sim.state.nodes
    w.family("kube_node_info", "gauge", "Information about a cluster node.")
    for node in nodes:
        w.constant("kube_node_info", _labels(node=node.name, provider_id=provider_id(node),
                                             internal_ip=_node_ip(node.name), os_image="Amazon Linux 2023",
                                             kubelet_version="v1.30.4-eks-a737599",
                                             container_runtime_version="containerd://1.7.20"), 1, node.name)
    w.family("kube_node_status_allocatable", "gauge", "The allocatable for different resources of a node.")
    for node in nodes:
        pods = 110 if node.instance_type not in INSTANCE_TYPES else INSTANCE_TYPES[node.instance_type][2]
        for resource, unit, value in (("cpu", "core", node.allocatable_cpu),
                                      ("memory", "byte", node.allocatable_memory), ("pods", "integer", pods)):
            w.constant("kube_node_status_allocatable", _labels(node=node.name, resource=resource, unit=unit), value,
                       node.name)
    w.family("kube_node_labels", "gauge", "Kubernetes labels converted to Prometheus labels.")
    for node in nodes:
        labels = {f"label_{_sanitise(k)}": v for k, v in sorted(node.labels.items())}
        w.constant("kube_node_labels", _labels(node=node.name, **labels), 1, node.name)
    w.family("kube_node_annotations", "gauge", "Kubernetes annotations converted to Prometheus labels.")
    for node in (n for n in nodes if n.annotations):
        annotations = {f"annotation_{_sanitise(k)}": v for k, v in sorted(node.annotations.items())}
        w.constant("kube_node_annotations", _labels(node=node.name, **annotations), 1, node.name)
    w.family("kube_node_spec_unschedulable", "gauge", "Whether a node can schedule new pods.")
    for node in nodes:
        w.constant("kube_node_spec_unschedulable", _labels(node=node.name), int(node.unschedulable), node.name)


def write_openmetrics(sim: Simulation, out: TextIO | str | os.PathLike, *, sample_step: int | None = None,
                      spread: float = 0.15) -> int:
    """Write ``sim`` to ``out`` (a text stream, or a path: written atomically) as OpenMetrics text.

    Returns the number of samples written. ``sample_step`` (seconds, at most
    the snapshot step) resamples by linear interpolation; ``spread`` is how far
    non-worst replicas sit below the worst.
    """
    if isinstance(out, (str, os.PathLike)):
        return write_openmetrics_file(sim, out, sample_step=sample_step, spread=spread)
    step = int(sim.state.window.step_seconds)
    sample_step = step if sample_step is None else int(sample_step)
    if not 0 < sample_step <= step:
        raise ValueError(f"sample_step must be between 1 and the snapshot step ({step}s), got {sample_step}")
    if not 0 <= spread < 1:
        raise ValueError(f"spread must be in [0, 1), got {spread}")
    ts = sim.timestamps
    times = np.arange(int(ts[0]), int(ts[-1]) + 1, sample_step, dtype=np.int64)
    writer = _Writer(sim, out, _Grid(times, float(sample_step), ts), spread)
    for section in (_cadvisor, _pods, _resources, _restarts, _workloads, _nodes):
        section(writer)
    out.write("# EOF\n")
    return writer.samples


def write_openmetrics_file(sim: Simulation, path: str | Path, **options) -> int:
    """Write to ``path`` atomically (temp file + rename); returns the number of samples."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            count = write_openmetrics(sim, handle, **options)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return count
