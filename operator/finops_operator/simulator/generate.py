"""Random but realistic scenarios for tests, the demo and the 10,000-container benchmark.

The mix mirrors what cost tools report in real clusters: most containers are
over-provisioned (requests 2-6x their peak), some are right-sized, some are
under-provisioned (CPU limit below peak demand: throttled; memory limit just
above peak: OOM kills), a few leak memory, a few are idle. About 15% of
Deployments have an HPA, 20% of replicated workloads a PDB; there are a few
DaemonSets, node groups sized with idle headroom (the trailing nodes stay
nearly empty), a spare node marked do-not-disrupt, unattached EBS volumes and
Released PVs; a Compute Savings Plan covers half of each hour's on-demand cost
in the simulated bill. Everything follows from ``seed``.
"""
from __future__ import annotations

import bisect
import itertools
import math
from datetime import datetime

import numpy as np

from ..models import HPA, ContainerRole
from ..units import parse_cpu, parse_memory
from .billspec import BillingSpec, SavingsPlan
from .placement import allocatable, digest
from .scenario import (ContainerSpec, NodeGroupSpec, NodeSpec, ScenarioSpec, SeriesSpec, VolumeSpec,
                       WorkloadSpec)

NAMESPACES = ("payments", "checkout", "search", "catalog", "analytics", "ml", "platform", "identity",
              "notifications", "reporting")
NOUNS = ("api", "worker", "gateway", "consumer", "indexer", "scheduler", "frontend", "cache", "sync", "exporter")
SIDECARS = ("istio-proxy", "log-shipper", "otel-collector", "config-reloader")
PATTERN_WEIGHTS = {"daily": .25, "weekend": .2, "steady": .1, "burst": .1, "seasonal": .07, "viral": .05,
                   "decline": .06, "growth": .06, "launch": .04, "migration": .02, "multitenant": .05}
PROFILES = {"over": .55, "right": .15, "throttled": .10, "leak": .05, "mempressure": .05, "idle": .10}
MI = 2**20
GENERAL, BATCH = "m5.4xlarge", "c5.xlarge"


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    cumulative = list(itertools.accumulate(weights.values()))
    return names[min(len(names) - 1, bisect.bisect_right(cumulative, rng.random() * cumulative[-1]))]


def _cpu_text(cores: float) -> str:
    millis = max(10, int(math.ceil(cores * 100)) * 10)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _mem_text(num: float) -> str:
    mib = max(64, int(math.ceil(num / MI / 64)) * 64)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _cpu_series(rng: np.random.Generator, base: float) -> tuple[SeriesSpec, float]:
    """A CPU pattern and a rough peak (what a p99 would see)."""
    pattern = _pick(rng, PATTERN_WEIGHTS)
    params: dict[str, float] = {"base": base}
    peak = base
    if pattern in ("daily", "weekend"):
        params["amplitude"] = base * float(rng.uniform(0.2, 0.8))
        params["peakHour"] = float(rng.integers(8, 20))
        peak = base + params["amplitude"]
    elif pattern == "seasonal":
        params["amplitude"] = base * 0.3
        params["periodDays"] = float(rng.choice([7.0, 30.0]))
        peak = base * 1.3
    elif pattern == "burst":
        params["burstsPerDay"] = float(rng.uniform(0.5, 3))
        peak = base * 1.5            # bursts are minutes a day: p95 barely sees them
    elif pattern == "viral":
        params["factor"] = float(rng.uniform(3, 10))
        peak = base * params["factor"] / 3
    elif pattern in ("growth", "launch"):
        params["endFactor"] = float(rng.uniform(1.5, 3.0))
        peak = base * params["endFactor"]
    elif pattern == "multitenant":
        peak = base * 1.8
    return SeriesSpec(pattern, params, float(rng.uniform(0.03, 0.12))), peak


def _container(rng: np.random.Generator, name: str, role: ContainerRole, profile: str,
               scale: float = 1.0) -> ContainerSpec:
    cpu_base = float(np.clip(rng.lognormal(math.log(0.08), 0.9), 0.005, 1.2)) * scale
    mem_base = float(np.clip(rng.lognormal(math.log(300 * MI), 0.7), 48 * MI, 4096 * MI)) * scale
    if profile == "idle":
        cpu_base, mem_base = cpu_base * 0.05, mem_base * 0.3
    cpu, cpu_peak = _cpu_series(rng, cpu_base)
    memory = SeriesSpec("steady" if rng.random() < 0.6 else "daily",
                        {"base": mem_base} | ({} if rng.random() < 0.6 else {"amplitude": mem_base * 0.1}),
                        float(rng.uniform(0.01, 0.04)))
    mem_peak = mem_base * 1.15
    spec = ContainerSpec(name, role, cpu=cpu, memory=memory)
    headroom = {"over": rng.uniform(2, 6), "idle": rng.uniform(10, 40), "right": rng.uniform(1.1, 1.4)}
    cpu_request = cpu_peak * float(headroom.get(profile, rng.uniform(1.1, 1.5)))
    mem_request = mem_peak * float(headroom.get(profile, rng.uniform(1.1, 1.3)))
    spec.requests = {"cpu": _cpu_text(min(cpu_request, 2.0)), "memory": _mem_text(min(mem_request, 4096 * MI))}
    if profile == "throttled":
        spec.requests["cpu"] = _cpu_text(min(cpu_peak * rng.uniform(0.4, 0.6), 3.0))
        spec.limits["cpu"] = _cpu_text(min(cpu_peak * rng.uniform(0.6, 0.85), 3.0))
    elif rng.random() < 0.6:
        spec.limits["cpu"] = _cpu_text(min(cpu_request * 2, 6.0))
    if profile == "leak":
        limit = mem_base * float(rng.uniform(2, 4))
        spec.limits["memory"] = spec.requests["memory"] = _mem_text(limit)
        hours = float(rng.uniform(24, 96))
        spec.memory = SeriesSpec("leak", {"base": mem_base, "rate": (limit - mem_base) / hours,
                                          "limit": float(_mem_bytes(spec.limits["memory"]))}, 0.02)
    elif profile == "mempressure":
        spec.limits["memory"] = spec.requests["memory"] = _mem_text(mem_peak * rng.uniform(0.95, 1.05))
    else:
        spec.limits["memory"] = spec.requests["memory"] if rng.random() < 0.5 else _mem_text(mem_request * 1.5)
    return spec


def _mem_bytes(text: str) -> int:
    return int(text[:-2]) * (1024 * MI if text.endswith("Gi") else MI)


def _workload(rng: np.random.Generator, index: int, kind: str, per_workload: int) -> WorkloadSpec:
    namespace = NAMESPACES[int(rng.integers(len(NAMESPACES)))]
    name = f"{namespace}-{NOUNS[int(rng.integers(len(NOUNS)))]}-{index}" if kind != "DaemonSet" \
        else f"node-agent-{index}"
    containers = []
    for i in range(per_workload):
        role = ContainerRole.SIDECAR if i > 0 and rng.random() < 0.5 else ContainerRole.APP
        cname = ("main" if i == 0 else SIDECARS[(i - 1) % len(SIDECARS)] + (f"-{i}" if i > len(SIDECARS) else "")
                 if role == ContainerRole.SIDECAR else f"worker-{i}")
        profile = _pick(rng, PROFILES) if i == 0 and kind != "DaemonSet" else "over"
        containers.append(_container(rng, cname, role, profile, 0.25 if kind == "DaemonSet" else 1.0))
    replicas = {"Deployment": int(rng.choice([1, 2, 2, 3, 3, 4, 6])), "StatefulSet": int(rng.choice([1, 3])),
                "CronJob": 1, "DaemonSet": 1}[kind]
    labels = {"team": namespace, "app.kubernetes.io/name": name}
    if rng.random() < 0.2:
        labels["tier"] = "production"
    spec = WorkloadSpec(kind, "kube-system" if kind == "DaemonSet" else namespace, name, containers, replicas, labels,
                        node_group="batch" if kind == "CronJob" else None)
    if kind == "Deployment" and rng.random() < 0.15:
        spec.hpa = HPA(name, replicas, replicas * 3, int(rng.integers(60, 81)), None, replicas)
    if kind in ("Deployment", "StatefulSet") and replicas > 1 and rng.random() < 0.2:
        spec.pdb_disruptions_allowed = int(rng.integers(0, 2))
    if rng.random() < 0.05:
        spec.age_days = float(rng.uniform(0.5, 3))
    for c in containers:
        if rng.random() < 0.1:
            c.gaps = float(rng.uniform(0.01, 0.05))
    return spec


def _requests(w: WorkloadSpec) -> tuple[float, float]:
    return (sum(parse_cpu(c.requests.get("cpu", 0)) for c in w.containers),
            float(sum(parse_memory(c.requests.get("memory", 0)) for c in w.containers)))


def _node_groups(workloads: list[WorkloadSpec], zone: str) -> list[NodeGroupSpec]:
    """Enough nodes for every pod at ~75% fill, plus two idle spares per group."""
    requests = [(w, *_requests(w)) for w in workloads]
    ds_cpu = sum(cpu for w, cpu, _ in requests if w.kind == "DaemonSet")
    ds_mem = sum(mem for w, _, mem in requests if w.kind == "DaemonSet")
    groups = []
    for name, itype, pinned in (("general", GENERAL, None), ("batch", BATCH, "batch")):
        cpu_alloc, mem_alloc = allocatable(itype)
        members = [(w, cpu, mem) for w, cpu, mem in requests if w.kind != "DaemonSet" and w.node_group == pinned]
        need_cpu = sum(cpu * w.replicas for w, cpu, _ in members)
        need_mem = sum(mem * w.replicas for w, _, mem in members)
        count = max(math.ceil(need_cpu / ((cpu_alloc - ds_cpu) * 0.75)),
                    math.ceil(need_mem / ((mem_alloc - ds_mem) * 0.75)), 1) + 2
        groups.append(NodeGroupSpec(name, itype, count, zone, age_days=60.0))
    return groups


def _volumes(rng: np.random.Generator, seed: int, workloads: int, zone: str) -> list[VolumeSpec]:
    out = []
    for i in range(max(2, workloads // 25)):
        vid = "vol-0" + digest(seed, "ebs", i).hex()[:16]
        state = "available" if rng.random() < 0.6 else "in-use"
        out.append(VolumeSpec(vid, "ebs", int(rng.choice([20, 50, 100, 200, 500])), str(rng.choice(["gp2", "gp3"])),
                              state, float(rng.uniform(1, 180)), {"Name": f"data-{i}"}, zone=zone))
    for i in range(max(2, workloads // 40)):
        raw = digest(seed, "pv", i).hex()
        pvid = f"pvc-{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"
        state = "Released" if rng.random() < 0.5 else "Bound"
        namespace = NAMESPACES[i % len(NAMESPACES)]
        out.append(VolumeSpec(pvid, "pv", int(rng.choice([10, 50, 100])), "gp3", state, float(rng.uniform(1, 90)),
                              claim=f"{namespace}/data-{i}", zone=zone, storage_class="gp3",
                              backing_volume_id="vol-0" + raw[32:48]))
    return out


def generate_scenario(workloads: int | None = None, containers_per_workload: int = 2, days: float = 14,
                      step_seconds: int = 300, seed: int = 0, *, containers: int | None = None,
                      end: datetime | None = None, cluster: str = "sim-eks", region: str = "us-east-1") -> ScenarioSpec:
    """A realistic random cluster of ``workloads x containers_per_workload`` containers.

    Give ``containers`` instead of ``workloads`` for an exact total (the last
    workload gets the remainder); with neither, 50 workloads.
    """
    if containers is not None:
        if containers < 1:
            raise ValueError(f"containers must be >= 1, got {containers}")
        workloads = math.ceil(containers / max(1, containers_per_workload))
    workloads = 50 if workloads is None else workloads
    if workloads < 1 or containers_per_workload < 1:
        raise ValueError("workloads and containers_per_workload must be >= 1")
    total = containers if containers is not None else workloads * containers_per_workload
    rng = np.random.default_rng(seed)
    zone = f"{region}a"
    daemonsets = min(3, max(1, round(workloads * 0.01)))
    specs = []
    for i in range(workloads):
        kind = "DaemonSet" if i < daemonsets else _pick(rng, {"Deployment": .8, "StatefulSet": .12, "CronJob": .08})
        count = min(containers_per_workload, total - i * containers_per_workload)
        specs.append(_workload(rng, i, kind, count))
    groups = _node_groups(specs, zone)
    spare = NodeSpec("ip-10-0-255-1.ec2.internal", GENERAL, "general", zone,
                     annotations={"karpenter.sh/do-not-disrupt": "true"}, age_days=20.0)
    return ScenarioSpec(cluster, region, specs, float(days), int(step_seconds), int(seed), end, groups, [spare],
                        _volumes(rng, seed, workloads, zone), BillingSpec(savings_plan=SavingsPlan(0.5, 0.28)))
