"""Run a scenario: inventory (ClusterState) plus raw per-container series.

Series are per replica, the *worst* replica at each step (what a right-sizer
must fit), float32 in cores and bytes, NaN for a gap. Each container's random
stream is seeded from ``sha256(seed | workload | container | resource)``, so
adding or removing a workload never changes any other workload's numbers.

Limits shape the series the way the kernel does:

* CPU above the limit is capped at the limit (CFS quota). The per-step
  throttled share of CFS periods is ``clip((demand / limit - 0.8) / 0.4, 0, 1)``
  (bursts inside a step throttle before the average reaches the limit); the
  container's ``throttled`` ratio is its mean over present steps. Containers
  without a CPU limit have no CFS data (NaN).
* Memory reaching the limit is an OOM kill: the sample touches the limit and
  the container restarts at the next step (leak patterns restart at ``base``).
  Kills are counted into ``Container.oom_kills`` / ``restarts`` with
  ``last_terminated_reason = "OOMKilled"`` (counts per replica: every replica
  of the workload follows the same timeline).

A container without a ``cpu`` / ``memory`` spec uses a steady 25% of its request
(10m / 64Mi without one). Node usage is the sum of the worst-replica series of
the pods placed on it plus a steady system overhead (kubelet, runtime).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from ..models import (PDB, ClusterState, Container, ContainerKey, Node, NodeGroup, Resources, Volume, VolumeSource,
                      Window,
                      Workload, WorkloadRef)
from ..units import parse_cpu, parse_memory
from ..usage import matrix_stats
from .patterns import render
from .placement import instance_id, make_node, node_name, place_pods, present_at, seed_of
from .scenario import ContainerSpec, ScenarioSpec, SeriesSpec, WorkloadSpec

SYSTEM_CPU = 0.12             # cores used by kubelet, containerd, the OS
SYSTEM_MEMORY = 700 * 2**20   # bytes


@dataclass(slots=True)
class Simulation:
    """What :func:`simulate` returns: inventory and series, ready for a snapshot or OpenMetrics."""

    spec: ScenarioSpec
    state: ClusterState
    keys: list[ContainerKey]
    timestamps: np.ndarray                 # int64 epoch seconds
    cpu: np.ndarray                        # float32 [rows, points]
    memory: np.ndarray                     # float32 [rows, points]
    throttled: np.ndarray                  # float32 [rows]
    throttle_steps: dict[int, np.ndarray] = field(default_factory=dict)   # row -> per-step throttled share (rows that throttle)
    restart_steps: dict[int, np.ndarray] = field(default_factory=dict)    # row -> indexes of restarted samples

    def snapshot(self):
        """The compact file form (see :mod:`finops_operator.snapshot`)."""
        from ..snapshot import Snapshot
        return Snapshot(self.state, list(self.keys), self.timestamps, self.cpu, self.memory, self.throttled)


def timeline(spec: ScenarioSpec, now: datetime | None = None) -> np.ndarray:
    """Evenly spaced int64 epoch seconds ending at ``spec.end`` (default: now, floored to the step)."""
    step = spec.step_seconds
    end = spec.end or now or datetime.now(timezone.utc)
    end_ts = int(end.timestamp()) // step * step
    points = max(2, int(round(spec.days * 86400 / step)))
    return end_ts - step * np.arange(points - 1, -1, -1, dtype=np.int64)


def _resources(spec: ContainerSpec) -> Resources:
    raw = {f"requests.{k}": v for k, v in spec.requests.items()} | {f"limits.{k}": v for k, v in spec.limits.items()}
    return Resources(parse_cpu(spec.requests["cpu"]) if "cpu" in spec.requests else None,
                     parse_cpu(spec.limits["cpu"]) if "cpu" in spec.limits else None,
                     parse_memory(spec.requests["memory"]) if "memory" in spec.requests else None,
                     parse_memory(spec.limits["memory"]) if "memory" in spec.limits else None, raw)


def _default_series(request: float | None, floor: float) -> SeriesSpec:
    return SeriesSpec("steady", {"base": max(floor, 0.25 * request) if request else floor}, 0.05)


def _gap_mask(spec: WorkloadSpec, cspec: ContainerSpec, ts: np.ndarray, seed: int) -> np.ndarray | None:
    """True where no sample exists: before the workload was created, and random scrape gaps."""
    gaps = np.zeros(len(ts), dtype=bool)
    if spec.age_days is not None:
        gaps |= ts < ts[-1] - spec.age_days * 86400
    if cspec.gaps > 0:
        rng = np.random.default_rng(seed_of(seed, spec.kind, spec.namespace, spec.name, cspec.name, "gaps"))
        length = 12
        for start in rng.integers(0, len(ts), size=max(1, int(cspec.gaps * len(ts) / length))):
            gaps[start:start + int(rng.integers(1, 2 * length))] = True
    return gaps if gaps.any() else None


class _Rows:
    """Fills the series matrices row by row."""

    def __init__(self, spec: ScenarioSpec, ts: np.ndarray, rows: int):
        self.spec, self.ts = spec, ts
        self.cpu = np.empty((rows, len(ts)), dtype=np.float32)
        self.memory = np.empty((rows, len(ts)), dtype=np.float32)
        self.throttled = np.full(rows, np.nan, dtype=np.float32)
        self.throttle_steps: dict[int, np.ndarray] = {}
        self.restart_steps: dict[int, np.ndarray] = {}

    def fill(self, row: int, w: WorkloadSpec, c: ContainerSpec, res: Resources) -> Container:
        ident = (self.spec.seed, w.kind, w.namespace, w.name, c.name)
        cpu_spec = c.cpu or _default_series(res.cpu_request, 0.01)
        mem_spec = c.memory or _default_series(res.memory_request, 64 * 2**20)
        demand = render(cpu_spec.pattern, self.ts, cpu_spec.params, cpu_spec.noise,
                        np.random.default_rng(seed_of(*ident, "cpu"))).values
        mem_curve = render(mem_spec.pattern, self.ts, mem_spec.params, mem_spec.noise,
                           np.random.default_rng(seed_of(*ident, "memory")))
        memory, restarts = mem_curve.values, mem_curve.oom_steps
        if res.memory_limit and not len(restarts):
            over = memory >= res.memory_limit
            restarts = np.flatnonzero(over[:-1] & ~np.concatenate(([False], over[:-2]))) + 1
            memory = np.minimum(memory, res.memory_limit)
        cpu = demand
        gaps = _gap_mask(w, c, self.ts, self.spec.seed)
        if res.cpu_limit:
            share = np.clip((demand / res.cpu_limit - 0.8) / 0.4, 0.0, 1.0)
            cpu = np.minimum(demand, res.cpu_limit)
            present = share if gaps is None else share[~gaps]
            self.throttled[row] = float(present.mean()) if len(present) else np.nan
            if share.any():
                self.throttle_steps[row] = share.astype(np.float32)
        if gaps is not None:
            cpu, memory = np.where(gaps, np.nan, cpu), np.where(gaps, np.nan, memory)
            restarts = restarts[~gaps[restarts]]
        self.cpu[row], self.memory[row] = cpu, memory
        if len(restarts):
            self.restart_steps[row] = restarts
        return Container(c.name, c.role, res, restarts=len(restarts), oom_kills=len(restarts),
                         last_terminated_reason="OOMKilled" if len(restarts) else None)


def _nodes(spec: ScenarioSpec, end: datetime) -> list[Node]:
    nodes = []
    for group in spec.node_groups:
        for index in range(group.count):
            name = node_name(spec.seed, group.name, index)
            nodes.append(make_node(name, group.instance_type, group.name, group.zone, group.capacity_type,
                                   end - timedelta(days=group.age_days), group.labels, group.annotations,
                                   instance=instance_id(spec.seed, name)))
    for n in spec.nodes:
        nodes.append(make_node(n.name, n.instance_type, n.node_group, n.zone, n.capacity_type,
                               end - timedelta(days=n.age_days), n.labels, n.annotations, n.unschedulable,
                               instance_id(spec.seed, n.name)))
    return nodes


def _volumes(spec: ScenarioSpec, end: datetime) -> list[Volume]:
    """``ageDays`` is how long the volume has been in its current state (detached / Released)."""
    out = []
    for v in spec.volumes:
        since = end - timedelta(days=v.age_days)
        out.append(Volume(v.id, VolumeSource(v.source), v.size_gib, v.type, v.state, since, dict(v.tags), v.zone,
                          v.claim, v.storage_class, v.backing_volume_id, v.iops, v.throughput,
                          since if v.state == "Released" else None))
    return out


def _node_usage(state: ClusterState, keys: list[ContainerKey], cpu: np.ndarray, memory: np.ndarray,
                ts: np.ndarray) -> None:
    """Per node: system overhead + the sum, over its pods, of their workload's summed container rows.

    A node created inside the window has no usage (and runs no pods) before its ``created_at``.
    """
    rows: dict[WorkloadRef, list[int]] = {}
    for row, key in enumerate(keys):
        rows.setdefault(key.workload, []).append(row)
    index = {n.name: i for i, n in enumerate(state.nodes)}
    total_cpu = np.full((len(state.nodes), len(ts)), SYSTEM_CPU, dtype=np.float32)
    total_mem = np.full((len(state.nodes), len(ts)), float(SYSTEM_MEMORY), dtype=np.float32)
    per_workload: dict[WorkloadRef, tuple[np.ndarray, np.ndarray]] = {}
    for pod in state.pods:
        if pod.node not in index or pod.owner not in rows:
            continue
        if pod.owner not in per_workload:
            pick = rows[pod.owner]
            per_workload[pod.owner] = (np.nansum(cpu[pick], axis=0), np.nansum(memory[pick], axis=0))
        pod_cpu, pod_mem = per_workload[pod.owner]
        total_cpu[index[pod.node]] += pod_cpu
        total_mem[index[pod.node]] += pod_mem
    for i, node in enumerate(state.nodes):
        absent = ~present_at(node, ts)
        total_cpu[i, absent] = np.nan
        total_mem[i, absent] = np.nan
    cpu_stats, mem_stats = matrix_stats(total_cpu, ts, state.window), matrix_stats(total_mem, ts, state.window)
    for i, node in enumerate(state.nodes):
        node.cpu_usage, node.memory_usage = cpu_stats[i], mem_stats[i]


def simulate(spec: ScenarioSpec, *, now: datetime | None = None) -> Simulation:
    """Generate the inventory and every container's series for ``spec``."""
    ts = timeline(spec, now)
    start, end = (datetime.fromtimestamp(int(x), timezone.utc) for x in (ts[0], ts[-1]))
    table = _Rows(spec, ts, sum(len(w.containers) for w in spec.workloads))
    keys: list[ContainerKey] = []
    workloads: list[Workload] = []
    for w in spec.workloads:
        ref = WorkloadRef(w.kind, w.namespace, w.name)
        containers = []
        for c in w.containers:
            containers.append(table.fill(len(keys), w, c, _resources(c)))
            keys.append(ContainerKey(ref, c.name))
        workloads.append(Workload(ref, w.replicas, containers, dict(w.labels), dict(w.annotations), w.hpa))
    state = ClusterState(spec.cluster, spec.region, Window(start, end, spec.step_seconds), workloads,
                         nodes=_nodes(spec, end), volumes=_volumes(spec, end),
                         node_groups=[NodeGroup(g.name, g.min_size, g.max_size, g.count) for g in spec.node_groups])
    pinned = {WorkloadRef(w.kind, w.namespace, w.name): w.node_group for w in spec.workloads if w.node_group}
    annotations = {WorkloadRef(w.kind, w.namespace, w.name): w.pod_annotations for w in spec.workloads}
    state.pods = place_pods(spec.seed, workloads, state.nodes, end, pinned, annotations)
    state.pdbs = [PDB(w.namespace, f"{w.name}-pdb", {"app": w.labels.get("app", w.name)}, w.pdb_disruptions_allowed)
                  for w in spec.workloads if w.pdb_disruptions_allowed is not None]
    _node_usage(state, keys, table.cpu, table.memory, ts)
    return Simulation(spec, state, keys, ts, table.cpu, table.memory, table.throttled,
                      table.throttle_steps, table.restart_steps)
