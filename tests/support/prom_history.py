"""A small OpenMetrics history generator for backfilling a real Prometheus in tests.

It writes the real cAdvisor and kube-state-metrics names and labels for a few
pods with known values, so tests can compare what Prometheus answers with what
was generated. (The scenario simulator's exporter writes the same names; this
one is tiny and exact, for adapter tests.)

Values are per scrape: ``cpu[i]`` is the average number of cores used in the
interval that ends at sample ``i`` (the counter grows by ``cpu[i] * interval``),
``memory[i]`` the working set at sample ``i``. NaN means "not running then":
no sample is written, which is how gaps and late or finished pods are made.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class SimContainer:
    namespace: str
    pod: str
    container: str
    node: str
    cpu: np.ndarray                       # cores, per sample; NaN = absent
    memory: np.ndarray                    # bytes, per sample; NaN = absent
    cpu_request: float = 0.5
    memory_request: float = 512 * 2**20
    cpu_limit: float | None = 1.0
    memory_limit: float | None = 1024 * 2**20
    throttled_share: float = 0.0          # share of CFS periods throttled
    restart_at: list[int] = field(default_factory=list)   # sample indexes where the restart counter bumps
    oom_at: int | None = None             # sample index from which the last terminated reason is OOMKilled
    counter_reset_at: int | None = None   # sample index where cAdvisor counters restart from zero
    created: int | None = None            # kube_pod_created (epoch seconds) while the pod runs; None: not exported


@dataclass
class History:
    """Samples at ``start + i * interval`` for ``i in range(points)``."""

    start: int
    interval: int
    points: int
    containers: list[SimContainer] = field(default_factory=list)
    pod_owners: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    replicaset_owners: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    job_owners: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    nodes: dict[str, tuple[float, float, dict[str, str]]] = field(default_factory=dict)  # cpu, mem, labels
    hpas: list[dict] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)    # on every series, e.g. {"cluster": "eu"}

    @property
    def end(self) -> int:
        return self.start + (self.points - 1) * self.interval

    def times(self) -> np.ndarray:
        return self.start + self.interval * np.arange(self.points)

    def add(self, c: SimContainer, owner: tuple[str, str]) -> SimContainer:
        """Add a container and record its pod's direct owner (kind, name)."""
        assert len(c.cpu) == self.points and len(c.memory) == self.points
        self.containers.append(c)
        self.pod_owners[(c.namespace, c.pod)] = owner
        return c

    # ------------------------------------------------------------------ writing

    def write(self, path: Path) -> Path:
        """Write the history as one OpenMetrics file (families not interleaved, samples in time order)."""
        with path.open("w") as out:
            for family, lines in self._families():
                out.write(f"# TYPE {family[0]} {family[1]}\n")
                for line in lines:
                    out.write(line)
            out.write("# EOF\n")
        return path

    def _alive(self, c: SimContainer) -> np.ndarray:
        return ~np.isnan(c.memory)

    def _series(self, name: str, labels: dict[str, str], values, alive) -> list[str]:
        lab = ",".join(f'{k}="{v}"' for k, v in {**labels, **self.labels}.items())
        t = self.times()
        return [f"{name}{{{lab}}} {float(values[i])!r} {int(t[i])}\n" for i in range(self.points) if alive[i]]

    def _families(self):
        yield ("container_cpu_usage_seconds", "counter"), self._counter_lines(
            "container_cpu_usage_seconds_total", lambda c: np.nan_to_num(c.cpu) * self.interval)
        yield ("container_memory_working_set_bytes", "gauge"), [
            line for c in self.containers
            for line in self._series("container_memory_working_set_bytes", self._labels(c),
                                     c.memory, self._alive(c))]
        yield ("container_cpu_cfs_periods", "counter"), self._counter_lines(
            "container_cpu_cfs_periods_total", lambda c: np.full(self.points, self.interval * 10.0))
        yield ("container_cpu_cfs_throttled_periods", "counter"), self._counter_lines(
            "container_cpu_cfs_throttled_periods_total", lambda c: np.full(self.points, self.interval * 10.0 * c.throttled_share))
        yield from self._ksm_families()

    def _labels(self, c: SimContainer, node: bool = False) -> dict[str, str]:
        labels = {"namespace": c.namespace, "pod": c.pod, "container": c.container}
        if node:
            labels["node"] = c.node
        return labels

    def _counter_lines(self, name: str, increments) -> list[str]:
        lines: list[str] = []
        for c in self.containers:
            alive = self._alive(c)
            values = np.cumsum(np.where(alive, increments(c), 0.0))
            if c.counter_reset_at:
                values[c.counter_reset_at:] -= values[c.counter_reset_at - 1]
            lines += self._series(name, self._labels(c), values, alive)
        return lines

    def _ksm_families(self):
        const = lambda value: np.full(self.points, value)   # noqa: E731
        every = np.ones(self.points, dtype=bool)
        for metric, attr in (("kube_pod_container_resource_requests", "request"),
                             ("kube_pod_container_resource_limits", "limit")):
            lines = []
            for c in self.containers:
                for resource, unit in (("cpu", "core"), ("memory", "byte")):
                    value = getattr(c, f"{resource}_{attr}")
                    if value is not None:
                        lines += self._series(metric, {**self._labels(c), "resource": resource, "unit": unit},
                                              const(value), self._alive(c))
            yield (metric, "gauge"), lines
        restarts = []
        for c in self.containers:
            counts = np.zeros(self.points)
            for i in c.restart_at:
                counts[i:] += 1
            restarts += self._series("kube_pod_container_status_restarts_total", self._labels(c), counts, self._alive(c))
        yield ("kube_pod_container_status_restarts", "counter"), restarts
        oom = []
        for c in self.containers:
            if c.oom_at is not None:
                alive = self._alive(c) & (np.arange(self.points) >= c.oom_at)
                oom += self._series("kube_pod_container_status_last_terminated_reason",
                                    {**self._labels(c), "reason": "OOMKilled"}, const(1), alive)
        yield ("kube_pod_container_status_last_terminated_reason", "gauge"), oom
        yield ("kube_pod_created", "gauge"), [
            line for c in self.containers if c.created is not None
            for line in self._series("kube_pod_created", {"namespace": c.namespace, "pod": c.pod},
                                     const(float(c.created)), self._alive(c))]
        yield ("kube_pod_owner", "gauge"), [
            line for (ns, pod), (kind, name) in sorted(self.pod_owners.items())
            for line in self._series("kube_pod_owner", {"namespace": ns, "pod": pod, "owner_kind": kind,
                                                        "owner_name": name, "owner_is_controller": "true"},
                                     const(1), self._pod_alive(ns, pod))]
        nodes = {(c.namespace, c.pod): c.node for c in self.containers}
        yield ("kube_pod_info", "gauge"), [
            line for (ns, pod), node in sorted(nodes.items())
            for line in self._series("kube_pod_info", {"namespace": ns, "pod": pod, "node": node},
                                     const(1), self._pod_alive(ns, pod))]
        yield ("kube_replicaset_owner", "gauge"), [
            line for (ns, rs), (kind, name) in sorted(self.replicaset_owners.items())
            for line in self._series("kube_replicaset_owner", {"namespace": ns, "replicaset": rs,
                                                               "owner_kind": kind, "owner_name": name},
                                     const(1), every)]
        yield ("kube_job_owner", "gauge"), [
            line for (ns, job), (kind, name) in sorted(self.job_owners.items())
            for line in self._series("kube_job_owner", {"namespace": ns, "job_name": job, "owner_kind": kind,
                                                        "owner_name": name}, const(1), every)]
        yield from self._node_and_hpa_families(const, every)

    def _pod_alive(self, namespace: str, pod: str) -> np.ndarray:
        alive = np.zeros(self.points, dtype=bool)
        for c in self.containers:
            if c.namespace == namespace and c.pod == pod:
                alive |= self._alive(c)
        return alive

    def _node_and_hpa_families(self, const, every):
        alloc = []
        for node, (cpu, mem, _) in sorted(self.nodes.items()):
            alloc += self._series("kube_node_status_allocatable", {"node": node, "resource": "cpu", "unit": "core"},
                                  const(cpu), every)
            alloc += self._series("kube_node_status_allocatable", {"node": node, "resource": "memory",
                                                                   "unit": "byte"}, const(mem), every)
        yield ("kube_node_status_allocatable", "gauge"), alloc
        yield ("kube_node_labels", "gauge"), [
            line for node, (_, _, labels) in sorted(self.nodes.items())
            for line in self._series("kube_node_labels", {"node": node, **{f"label_{k}": v for k, v in labels.items()}},
                                     const(1), every)]
        specs = (("kube_horizontalpodautoscaler_info", None), ("kube_horizontalpodautoscaler_spec_min_replicas", "min"),
                 ("kube_horizontalpodautoscaler_spec_max_replicas", "max"),
                 ("kube_horizontalpodautoscaler_status_current_replicas", "current"))
        for metric, key in specs:
            lines = []
            for h in self.hpas:
                labels = {"namespace": h["namespace"], "horizontalpodautoscaler": h["name"]}
                if key is None:
                    labels.update(scaletargetref_kind=h["kind"], scaletargetref_name=h["target"])
                lines += self._series(metric, labels, const(1 if key is None else h[key]), every)
            yield (metric, "gauge"), lines
        lines = []
        for h in self.hpas:
            labels = {"namespace": h["namespace"], "horizontalpodautoscaler": h["name"], "metric_name": "cpu",
                      "metric_target_type": "utilization"}
            lines += self._series("kube_horizontalpodautoscaler_spec_target_metric", labels, const(h["cpu"]), every)
        yield ("kube_horizontalpodautoscaler_spec_target_metric", "gauge"), lines


def rate_truth(cpu: np.ndarray, samples_per_window: int) -> np.ndarray:
    """What ``rate(counter[w])`` returns at each sample when ``w`` spans ``samples_per_window`` intervals.

    With samples exactly on the window's edges, rate() needs no extrapolation
    and equals the mean of the per-interval rates inside the window. NaN where
    the window is not fully covered.
    """
    out = np.full(len(cpu), math.nan)
    for i in range(samples_per_window, len(cpu)):
        window = cpu[i - samples_per_window + 1: i + 1]
        if not np.isnan(cpu[i - samples_per_window]) and not np.isnan(window).any():
            out[i] = float(window.mean())
    return out
