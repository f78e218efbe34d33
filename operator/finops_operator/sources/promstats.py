"""Pure helpers for the Prometheus adapter: parse bundled answers, merge chunks and replicas.

How figures are combined (and why):

* **Chunks** (a long window split into several subqueries, per pod container):
  ``max`` is the max of the chunk maxima (exact); ``count`` the sum (exact);
  ``mean`` the count-weighted mean (exact); ``std`` the pooled standard
  deviation from chunk means and variances (exact); ``first``/``last`` the
  min/max (exact). Quantiles are the **max of the chunk quantiles**: an upper
  bound of the true quantile (if every chunk has at most (1-q) of its points
  above its own q-quantile, the whole window has at most (1-q) above the
  largest of them). Right-sizing from an upper bound never under-sizes; with
  one chunk the figure is exact.
* **Replicas** (pods of one workload, including pods renamed by rollouts):
  every statistic except the count is the max over pods, the "worst replica"
  a request must fit. ``samples`` is the sum of the pods' counts capped by the
  number of steps covered by the union of their [first, last] spans, so a
  rollout (pods one after another) adds up to full coverage while three
  replicas running side by side are not counted three times.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from ..errors import DataSourceError
from ..models import HPA, UsageStats, WorkloadRef

Labels = dict[str, str]
PodKey = tuple[str, str, str]            # namespace, pod, container
_QUANTILE_STAT = re.compile(r"^[pq](\d{1,3})$")     # "p95" (standard set) or "q97" (asked for): percent


def parse_bundle(result: list[dict], *, source: str) -> dict[str, list[tuple[Labels, float]]]:
    """Split a bundled instant-query answer by its ``stat`` label; NaN values are dropped."""
    out: dict[str, list[tuple[Labels, float]]] = defaultdict(list)
    for item in result:
        try:
            labels = dict(item["metric"])
            value = float(item["value"][1])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise DataSourceError(f"unexpected element in a query answer ({exc!r}): {str(item)[:200]}",
                                  source=source) from None
        if math.isnan(value):
            continue
        out[labels.pop("stat", "")].append((labels, value))
    return out


def by_pod(rows: list[tuple[Labels, float]]) -> dict[PodKey, float]:
    """Index rows that carry namespace/pod/container labels."""
    return {(lb.get("namespace", ""), lb.get("pod", ""), lb.get("container", "")): v for lb, v in rows}


def stats_by_key(bundle: dict[str, list[tuple[Labels, float]]], keys: tuple[str, ...]) -> dict[tuple, dict[str, float]]:
    """Regroup a statistics bundle as ``{label values: {stat: value}}``."""
    out: dict[tuple, dict[str, float]] = defaultdict(dict)
    for stat, rows in bundle.items():
        for labels, value in rows:
            out[tuple(labels.get(k, "") for k in keys)][stat] = value
    return out


# --------------------------------------------------------------------------- chunks


def combine_chunks(parts: list[dict[str, float]]) -> dict[str, float]:
    """Merge one series' statistics from several chunks (see module doc for the rules)."""
    parts = [p for p in parts if p.get("count", 0) > 0]
    if not parts:
        return {}
    if len(parts) == 1:
        return dict(parts[0])
    total = sum(p["count"] for p in parts)
    mean = sum(p.get("mean", 0.0) * p["count"] for p in parts) / total
    var = sum(p["count"] * (p.get("std", 0.0) ** 2 + (p.get("mean", 0.0) - mean) ** 2) for p in parts) / total
    merged = {"count": total, "mean": mean, "std": math.sqrt(max(var, 0.0))}
    for stat in {s for p in parts for s in p} - {"count", "mean", "std", "first"}:
        merged[stat] = max(p[stat] for p in parts if stat in p)
    firsts = [p["first"] for p in parts if "first" in p]
    if firsts:
        merged["first"] = min(firsts)
    return merged


# --------------------------------------------------------------------------- replicas


def covered_steps(spans: list[tuple[float, float]], step_s: int) -> int:
    """Steps covered by the union of [first, last] spans (inclusive) at ``step_s``."""
    covered = 0
    end = -math.inf
    for first, last in sorted(spans):
        start = max(first, end + step_s)
        if last >= start:
            covered += int((last - start) // step_s) + 1
        end = max(end, last)
    return covered


def merge_replicas(pods: list[dict[str, float]], *, expected: int, step_s: int) -> UsageStats | None:
    """Worst-replica statistics for one workload container; None without any sample."""
    pods = [p for p in pods if p.get("count", 0) > 0]
    if not pods:
        return None
    samples = int(sum(p["count"] for p in pods))
    spans = [(p["first"], p["last"]) for p in pods if "first" in p and "last" in p]
    if spans:
        samples = min(samples, covered_steps(spans, step_s))
    first = min((p["first"] for p in pods if "first" in p), default=None)

    def worst(stat: str) -> float:
        return max((p[stat] for p in pods if stat in p), default=0.0)

    quantiles = {int(m.group(1)): worst(stat) for stat in sorted({s for p in pods for s in p})
                 if (m := _QUANTILE_STAT.match(stat))}
    return UsageStats(
        samples=min(samples, expected), expected=expected, quantiles=quantiles,
        max=worst("max"), mean=worst("mean"), std=worst("std"),
        first_seen=datetime.fromtimestamp(first, tz=timezone.utc) if first is not None else None,
    )


def series_stats(points: dict[int, float], window, percentiles: tuple[int, ...] = ()) -> UsageStats | None:
    """Statistics of one series given as ``{epoch second: value}`` (quantiles interpolate like PromQL)."""
    if not points:
        return None
    times = sorted(points)
    values = np.array([points[t] for t in times], dtype=np.float64)
    quantiles = {q: float(np.percentile(values, q)) for q in percentiles}
    return UsageStats(samples=min(len(values), window.expected_points), expected=window.expected_points,
                      quantiles=quantiles, max=float(values.max()),
                      mean=float(values.mean()), std=float(values.std()),
                      first_seen=datetime.fromtimestamp(times[0], tz=timezone.utc))


# --------------------------------------------------------------------------- owners


@dataclass(slots=True)
class Owners:
    """Owner references read from kube-state-metrics, merged over all chunks."""

    pods: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    replicasets: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    jobs: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def add(self, bundle: dict[str, list[tuple[Labels, float]]]) -> None:
        for stat, table, name_label in (("pod", self.pods, "pod"), ("rs", self.replicasets, "replicaset"),
                                        ("job", self.jobs, "job_name")):
            for labels, _ in bundle.get(stat, []):
                kind, name = labels.get("owner_kind", "<none>"), labels.get("owner_name", "<none>")
                key = (labels.get("namespace", ""), labels.get(name_label, ""))
                if kind in ("<none>", "") or name in ("<none>", ""):
                    table.setdefault(key, ("", ""))
                else:
                    table[key] = (kind, name)

    def workload_of(self, namespace: str, pod: str) -> WorkloadRef:
        """Resolve a pod to its workload: ReplicaSet -> Deployment, Job -> CronJob, else the direct owner.

        A pod without owner information stays a ``Pod`` of its own name (it
        cannot be edited through a workload manifest, and detectors can say so).
        """
        kind, name = self.pods.get((namespace, pod), ("", ""))
        if not kind:
            return WorkloadRef("Pod", namespace, pod)
        if kind == "ReplicaSet":
            parent = self.replicasets.get((namespace, name), ("", ""))
            return WorkloadRef(parent[0], namespace, parent[1]) if parent[0] else WorkloadRef(kind, namespace, name)
        if kind == "Job":
            parent = self.jobs.get((namespace, name), ("", ""))
            return WorkloadRef(parent[0], namespace, parent[1]) if parent[0] else WorkloadRef(kind, namespace, name)
        return WorkloadRef(kind, namespace, name)


def hpas_from(bundle: dict[str, list[tuple[Labels, float]]]) -> dict[WorkloadRef, HPA]:
    """HPA specs keyed by the workload they scale."""
    keyed: dict[tuple[str, str], dict[str, object]] = defaultdict(dict)
    for stat, rows in bundle.items():
        for labels, value in rows:
            entry = keyed[(labels.get("namespace", ""), labels.get("horizontalpodautoscaler", ""))]
            if stat == "info":
                entry["target"] = (labels.get("scaletargetref_kind", ""), labels.get("scaletargetref_name", ""))
            elif stat == "target":
                entry[f"target_{labels.get('metric_name', '')}"] = int(round(value))
            else:
                entry[stat] = int(round(value))
    out: dict[WorkloadRef, HPA] = {}
    for (namespace, name), entry in keyed.items():
        target = entry.get("target")
        if not target or "min" not in entry or "max" not in entry:
            continue
        kind, target_name = target  # type: ignore[misc]
        out[WorkloadRef(kind, namespace, target_name)] = HPA(
            name=name, min_replicas=int(entry["min"]), max_replicas=int(entry["max"]),  # type: ignore[arg-type]
            target_cpu_utilization=entry.get("target_cpu"),  # type: ignore[arg-type]
            target_memory_utilization=entry.get("target_memory"),  # type: ignore[arg-type]
            current_replicas=entry.get("current"),  # type: ignore[arg-type]
        )
    return out
