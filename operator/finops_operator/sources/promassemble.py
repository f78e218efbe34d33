"""Pure assembly of a live scan's answers into a :class:`UsageResult` (no I/O).

* usage: every pod container at once, :func:`.prombuckets.pod_stats_many`; pods of one workload
  container (replicas, and pods renamed by rollouts) merged by
  ``stats.merge_replicas`` (the worst replica, per bucket and for the window);
* facts: restarts and OOM kills summed over a workload's pods, throttling
  summed, requests and limits from the most recently seen pod (the one with
  samples in the latest bucket);
* nodes: allocatable and labels from kube-state-metrics, usage from the pods'
  per-bucket means summed by node (:class:`.prombuckets.NodeSums`).
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from ..models import Container, ContainerKey, ContainerUsage, Resources, WorkloadRef
from ..stats import PodSeriesStats
from .prombuckets import (NodeSums, expected_counts, last_seen, merge, merge_grid, pod_stats_many, pod_usage,
                          window_quantiles)
from .promstats import Labels, Owners, PodKey, by_pod, hpas_from, pod_key

if TYPE_CHECKING:
    from .prometheus import UsageResult
    from .promscan import Answers, ScanRequest

HPA_STATS = ("info", "min", "max", "current", "target")


def assemble(request: "ScanRequest", answers: "Answers") -> "UsageResult":
    from .prometheus import UsageResult
    objects = answers.objects
    result = UsageResult(window=request.window, hpas=hpas_from({k: v for k, v in objects.items() if k in HPA_STATS}))
    owners = Owners()
    owners.add(objects)
    created = {(lb.get("namespace", ""), lb.get("pod", "")): value for lb, value in objects.get("created", [])}
    _usage(result, answers, owners, created)
    seen: dict[PodKey, float] = {}
    for name in ("cpu", "memory"):
        for key, at in last_seen(answers.buckets[name], answers.grid).items():
            seen[key] = max(seen.get(key, 0.0), at)
    _facts(result, answers.facts, seen)
    placed = {(lb.get("namespace", ""), lb.get("pod", "")): lb.get("node", "") for lb, _ in objects.get("placed", [])}
    _nodes(result, answers, placed)
    return result


def _usage(result: "UsageResult", answers: "Answers", owners: Owners, created: dict[tuple[str, str], float]) -> None:
    grouped: dict[str, dict[ContainerKey, list[PodSeriesStats]]] = {"cpu": defaultdict(list),
                                                                     "memory": defaultdict(list)}
    for name in ("cpu", "memory"):
        exact = window_quantiles(answers.window_q, name)
        keys = list(answers.buckets[name])
        rows = [answers.buckets[name][pk] for pk in keys]
        per_pod = pod_stats_many(rows, answers.grid, answers.expected[name], [exact.get(pk, {}) for pk in keys],
                                 answers.plans[name].quantiles, [created.get((pk[0], pk[1])) for pk in keys])
        for pk, stats in zip(keys, per_pod):
            if stats is None:
                continue
            ref = owners.workload_of(pk[0], pk[1])
            result.pods[(pk[0], pk[1])] = ref
            grouped[name][ContainerKey(ref, pk[2])].append(stats)
    expected = {name: np.asarray(answers.expected[name]) for name in ("cpu", "memory")}
    shared = {name: merge_grid(answers.grid, expected[name]) for name in ("cpu", "memory")}
    for key in sorted(set(grouped["cpu"]) | set(grouped["memory"])):
        cpu, memory = (merge(grouped[name].get(key, []), answers.grid, expected[name], buckets=shared[name])
                       for name in ("cpu", "memory"))
        result.usage[key] = ContainerUsage(key=key, cpu=cpu, memory=memory)


def _facts(result: "UsageResult", bundle: dict[str, list[tuple[Labels, float]]], seen: dict[PodKey, float]) -> None:
    restarts: dict[ContainerKey, float] = defaultdict(float)
    ooms: dict[ContainerKey, int] = defaultdict(int)
    throttled: dict[ContainerKey, list[float]] = defaultdict(lambda: [0.0, 0.0])
    spec: dict[ContainerKey, dict[str, tuple[float, float]]] = defaultdict(dict)   # field -> (seen, value)

    keys: dict[PodKey, ContainerKey] = {}

    def key_of(pk: PodKey) -> ContainerKey:
        key = keys.get(pk)
        if key is None:
            ref = result.pods.get((pk[0], pk[1])) or WorkloadRef("Pod", pk[0], pk[1])
            key = keys[pk] = ContainerKey(ref, pk[2])
        return key

    for pk, value in by_pod(bundle.get("restarts", [])).items():
        restarts[key_of(pk)] += value
    for pk, value in by_pod(bundle.get("oom", [])).items():
        ooms[key_of(pk)] += int(value >= 1)
    for i, stat in enumerate(("throttled", "periods")):
        for pk, value in by_pod(bundle.get(stat, [])).items():
            throttled[key_of(pk)][i] += value
    for stat in ("request", "limit"):
        for labels, value in bundle.get(stat, []):
            pk = pod_key(labels)
            name = f"{stat}.{labels.get('resource', '')}"
            at, fields = seen.get(pk, 0.0), spec[key_of(pk)]
            prior = fields.get(name)
            if prior is None or at >= prior[0]:
                fields[name] = (at, value)   # the most recently seen pod wins
    for key in result.usage:
        got = {name: value for name, (_, value) in spec.get(key, {}).items()}
        resources = Resources(
            cpu_request=got.get("request.cpu"), cpu_limit=got.get("limit.cpu"),
            memory_request=int(got["request.memory"]) if "request.memory" in got else None,
            memory_limit=int(got["limit.memory"]) if "limit.memory" in got else None)
        result.containers[key] = Container(name=key.container, resources=resources,
                                           restarts=int(round(restarts.get(key, 0.0))), oom_kills=ooms.get(key, 0),
                                           last_terminated_reason="OOMKilled" if ooms.get(key) else None)
        num, den = throttled.get(key, (0.0, 0.0))
        if den > 0:
            result.usage[key].cpu_throttled_ratio = min(1.0, num / den)


def _nodes(result: "UsageResult", answers: "Answers", placed: dict[tuple[str, str], str]) -> None:
    from .prometheus import NodeUsage
    nodes: dict[str, NodeUsage] = {}
    info = answers.objects
    for labels, value in info.get("allocatable", []):
        node = nodes.setdefault(labels.get("node", ""), NodeUsage(labels.get("node", "")))
        if labels.get("resource") == "cpu":
            node.allocatable_cpu = value
        elif labels.get("resource") == "memory":
            node.allocatable_memory = int(value)
    for labels, _ in info.get("labels", []):
        node = nodes.setdefault(labels.get("node", ""), NodeUsage(labels.get("node", "")))
        node.labels = {k[len("label_"):]: v for k, v in labels.items() if k.startswith("label_")}
    sums = NodeSums(answers.grid)
    for name in ("cpu", "memory"):
        if answers.pod_means is not None:      # every namespace's pods, unfiltered by any timeWindow
            rows = {pod: {k: v for k, v in row.items() if k.startswith(name)} for pod, row in answers.pod_means.items()}
            counts = {pod: {"count": row[f"{name}_count"]} for pod, row in rows.items() if f"{name}_count" in row}
            expected = expected_counts(counts, answers.window, 1) if counts else np.ones(len(answers.grid.ends))
            means = pod_usage({pod: row for pod, row in rows.items() if row}, expected)
        else:
            means = pod_usage(answers.buckets[name], np.asarray(answers.expected[name]))
        sums.add(name, placed, means)
        for node_name in getattr(sums, name):
            node = nodes.setdefault(node_name, NodeUsage(node_name))
            setattr(node, name, sums.stats(name, node_name, answers.plans[name].quantiles))
    nodes.pop("", None)
    result.nodes = nodes
