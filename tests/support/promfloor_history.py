"""A lean cluster history for the Prometheus-floor benchmark: only the series the measured tools read.

The scenario simulator writes ~33 series per container at the full step (every
pod's cAdvisor and kube-state-metrics series); 10,000 containers x 1 day of it
is ~16 GB of OpenMetrics. This writer streams only what the four measured
passes read (the project's scan, the KRR-pattern baseline, the floor), at two
rates so promtool has less to chew:

every ``interval`` (default 5 minutes), per pod container / pod:
  container_cpu_usage_seconds_total{namespace,pod,container}         counter (core-seconds)
  container_memory_working_set_bytes{namespace,pod,container}        gauge
  namespace_pod_container:finops_container_cpu_usage_cores:rate5m   the design's recording rules,
  namespace_pod_container:finops_container_memory_working_set_bytes:max5m   written next to the raw
        series (see ``recorded``): what the rule expressions give at each sample time
  kube_pod_info{namespace,pod,node}                                   (the project joins it per step)
hourly, and at the last sample (instant queries at the window end see them):
  container_cpu_cfs_periods_total / container_cpu_cfs_throttled_periods_total
  kube_pod_container_resource_requests / _limits{namespace,pod,container,node,resource,unit}
  kube_pod_container_status_restarts_total, kube_pod_container_info{namespace,pod,container}
  kube_pod_owner{...,owner_kind="ReplicaSet",owner_name}, kube_pod_status_phase{phase="Running"}
  kube_replicaset_owner{namespace,replicaset,owner_kind="Deployment",owner_name}
  kube_node_status_allocatable, kube_node_labels

Shape: workloads are Deployments with ``CONTAINERS_PER_WORKLOAD`` containers;
every fourth has 2 replicas, the others 1 (so KRR's ``pod=~"a|b"`` selectors
see both forms). Every pod runs the whole window. CPU is a per-container level
with a daily cycle, noise and rare bursts; memory a level with noise.

Recorded series: with samples every 5 minutes exactly on the evaluation
times, ``rate(c[5m])`` at sample i is (c[i] - c[i-1]) / 300, the core usage of
interval i, and ``max_over_time(m[5m])`` is max(m[i-1], m[i]) (Prometheus 2.x
ranges are closed at both ends). Those are the values written; the benchmark
checks them against the rule expressions evaluated by the server.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from finops_operator.sources.promusage import CPU_RULE, MEMORY_RULE

CONTAINERS_PER_WORKLOAD = 2
PODS_PER_NODE = 40
NAMESPACES = 50
HOURLY = 3600
APP_MATCHERS = 'container!="POD"'     # the rules' selectors end with it; a check appends its matchers there


def shipped_rule_exprs() -> dict[str, str]:
    """The shipped recording rules (``data/prometheus-rules.yaml``): record name -> expression."""
    import yaml

    from finops_operator import bundled

    groups = yaml.safe_load(bundled.path("prometheus-rules.yaml").read_text())["groups"]
    return {rule["record"]: rule["expr"] for group in groups for rule in group["rules"]}


def narrowed(expr: str, extra: str) -> str:
    """``expr`` with ``extra`` matchers (``', pod="x"'``) added to its selector."""
    if expr.count(APP_MATCHERS + "}") != 1:
        raise RuntimeError(f"the rule expression {expr!r} no longer has one selector ending in {APP_MATCHERS}")
    return expr.replace(APP_MATCHERS + "}", APP_MATCHERS + extra + "}")


@dataclass(frozen=True, slots=True)
class PodContainer:
    namespace: str
    workload: str
    replicaset: str
    pod: str
    container: str
    node: str


def layout(containers: int) -> list[PodContainer]:
    """The pod containers of ``containers`` workload containers (replicas included), in a fixed order."""
    out: list[PodContainer] = []
    workloads = -(-containers // CONTAINERS_PER_WORKLOAD)
    pod_index = 0
    for w in range(workloads):
        ns, name = f"ns-{w % NAMESPACES:02d}", f"app-{w:05d}"
        rs = f"{name}-{(w * 2654435761) % 16**9:09x}"
        names = [f"c{c}" for c in range(CONTAINERS_PER_WORKLOAD)][:containers - w * CONTAINERS_PER_WORKLOAD]
        for r in range(2 if w % 4 == 0 else 1):
            pod = f"{rs}-{(w * 40503 + r * 977) % 36**5:05x}"
            node = f"node-{pod_index // PODS_PER_NODE:04d}"
            pod_index += 1
            out += [PodContainer(ns, name, rs, pod, c, node) for c in names]
    return out


def _lines(name: str, labels: str, values, times) -> str:
    return "".join(f"{name}{{{labels}}} {v:.10g} {t}\n" for v, t in zip(values, times))


def _labels(pc: PodContainer) -> str:
    return f'namespace="{pc.namespace}",pod="{pc.pod}",container="{pc.container}"'


class _Usage:
    """Per pod container: CPU cores per interval and working-set bytes per sample (deterministic per seed)."""

    def __init__(self, times: np.ndarray, seed: int):
        self.times, self.seed = times, seed
        self.daily = np.sin(2 * np.pi * (times % 86400) / 86400.0)

    def of(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, index))
        n = len(self.times)
        level = rng.uniform(0.02, 1.5)
        cpu = level * (1 + rng.uniform(0, 0.5) * self.daily) * rng.lognormal(0, 0.15, n)
        bursts = rng.random(n) < 0.005
        cpu = np.round(np.where(bursts, cpu * rng.uniform(2, 4), cpu), 6)
        mem = np.round(rng.uniform(30, 3000) * 2**20 * (1 + 0.08 * rng.standard_normal(n)).clip(0.5))
        return cpu, mem


def write_history(path: Path, containers: int, *, start: int, end: int, interval: int = 300,
                  seed: int = 1, recorded: bool = True) -> dict:
    """Stream the history for [start, end] to ``path`` (OpenMetrics); returns its sizes."""
    times = np.arange(start, end + 1, interval, dtype=np.int64)
    coarse = times[(times - start) % HOURLY == 0]
    if coarse[-1] != times[-1]:
        coarse = np.append(coarse, times[-1])
    pcs = layout(containers)
    usage = _Usage(times, seed)
    counts = {"samples": 0}
    with path.open("w") as out:
        _fine(out, pcs, usage, times, interval, recorded, counts)
        _coarse(out, pcs, coarse, interval, counts)
        out.write("# EOF\n")
    pods = {(pc.namespace, pc.pod) for pc in pcs}
    return {"containers": containers, "pod_containers": len(pcs), "pods": len(pods),
            "workloads": len({(pc.namespace, pc.workload) for pc in pcs}), "nodes": len({pc.node for pc in pcs}),
            "samples": counts["samples"], "interval_seconds": interval, "start": int(times[0]), "end": int(times[-1]),
            "points_per_series": len(times), "openmetrics_bytes": path.stat().st_size, "recorded_series": recorded}


def _family(out: TextIO, name: str, kind: str) -> None:
    out.write(f"# TYPE {name} {kind}\n")


def _fine(out: TextIO, pcs: list[PodContainer], usage: _Usage, times: np.ndarray, interval: int,
          recorded: bool, counts: dict) -> None:
    t = times.tolist()
    _family(out, "container_cpu_usage_seconds", "counter")
    for i, pc in enumerate(pcs):
        cpu, _ = usage.of(i)
        out.write(_lines("container_cpu_usage_seconds_total", _labels(pc), np.cumsum(cpu * interval).tolist(), t))
    _family(out, "container_memory_working_set_bytes", "gauge")
    for i, pc in enumerate(pcs):
        out.write(_lines("container_memory_working_set_bytes", _labels(pc), usage.of(i)[1].tolist(), t))
    counts["samples"] += 2 * len(pcs) * len(t)
    if recorded:
        _family(out, CPU_RULE, "gauge")
        for i, pc in enumerate(pcs):       # the counter's first sample has no rate
            out.write(_lines(CPU_RULE, _labels(pc), usage.of(i)[0][1:].tolist(), t[1:]))
        _family(out, MEMORY_RULE, "gauge")
        for i, pc in enumerate(pcs):
            mem = usage.of(i)[1]
            out.write(_lines(MEMORY_RULE, _labels(pc), np.maximum(mem, np.concatenate([mem[:1], mem[:-1]])).tolist(),
                             t))
        counts["samples"] += len(pcs) * (2 * len(t) - 1)
    _family(out, "kube_pod_info", "gauge")
    pods = {(pc.namespace, pc.pod): pc.node for pc in pcs}
    ones = [1] * len(t)
    for (ns, pod), node in pods.items():
        out.write(_lines("kube_pod_info", f'namespace="{ns}",pod="{pod}",node="{node}"', ones, t))
    counts["samples"] += len(pods) * len(t)


def _coarse(out: TextIO, pcs: list[PodContainer], coarse: np.ndarray, interval: int, counts: dict) -> None:
    t = coarse.tolist()
    n = len(t)
    ones, zeros = [1] * n, [0] * n
    periods = ((coarse - coarse[0]) * 10.0).tolist()          # 10 CFS periods per second
    for family, name, values in (("container_cpu_cfs_periods", "container_cpu_cfs_periods_total", periods),
                                 ("container_cpu_cfs_throttled_periods", "container_cpu_cfs_throttled_periods_total",
                                  [p * 0.02 for p in periods]),
                                 ("kube_pod_container_status_restarts", "kube_pod_container_status_restarts_total",
                                  zeros), ("kube_pod_container_info", "kube_pod_container_info", ones)):
        _family(out, family, "counter" if name.endswith("_total") else "gauge")
        for pc in pcs:
            out.write(_lines(name, _labels(pc), values, t))
    for family, cpu, mem in (("kube_pod_container_resource_requests", 0.5, 512 * 2**20),
                             ("kube_pod_container_resource_limits", 1.0, 1024 * 2**20)):
        _family(out, family, "gauge")
        for pc in pcs:
            base = f'{_labels(pc)},node="{pc.node}"'
            out.write(_lines(family, base + ',resource="cpu",unit="core"', [cpu] * n, t))
            out.write(_lines(family, base + ',resource="memory",unit="byte"', [mem] * n, t))
    counts["samples"] += 8 * len(pcs) * n
    pods = sorted({(pc.namespace, pc.pod, pc.replicaset) for pc in pcs})
    _family(out, "kube_pod_owner", "gauge")
    for ns, pod, rs in pods:
        out.write(_lines("kube_pod_owner", f'namespace="{ns}",pod="{pod}",owner_kind="ReplicaSet",'
                         f'owner_name="{rs}",owner_is_controller="true"', ones, t))
    _family(out, "kube_pod_status_phase", "gauge")
    for ns, pod, _ in pods:
        out.write(_lines("kube_pod_status_phase", f'namespace="{ns}",pod="{pod}",phase="Running"', ones, t))
    sets = sorted({(pc.namespace, pc.replicaset, pc.workload) for pc in pcs})
    _family(out, "kube_replicaset_owner", "gauge")
    for ns, rs, name in sets:
        out.write(_lines("kube_replicaset_owner", f'namespace="{ns}",replicaset="{rs}",owner_kind="Deployment",'
                         f'owner_name="{name}",owner_is_controller="true"', ones, t))
    nodes = sorted({pc.node for pc in pcs})
    _family(out, "kube_node_status_allocatable", "gauge")
    for node in nodes:
        out.write(_lines("kube_node_status_allocatable", f'node="{node}",resource="cpu",unit="core"', [63.7] * n, t))
        out.write(_lines("kube_node_status_allocatable", f'node="{node}",resource="memory",unit="byte"',
                         [250 * 2**30] * n, t))
    _family(out, "kube_node_labels", "gauge")
    for node in nodes:
        out.write(_lines("kube_node_labels", f'node="{node}",label_node_kubernetes_io_instance_type="m5.16xlarge"',
                         ones, t))
    counts["samples"] += n * (2 * len(pods) + len(sets) + 3 * len(nodes))
