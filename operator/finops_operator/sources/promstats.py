"""Pure helpers of the Prometheus readers: parse bundled instant answers, owners, HPAs."""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from ..errors import DataSourceError
from ..models import HPA, WorkloadRef

Labels = dict[str, str]
PodKey = tuple[str, str, str]            # namespace, pod, container


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


def pod_key(labels: Labels) -> PodKey:
    """The pod container a series' labels name ("" for a label it lacks)."""
    return labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", "")


def by_pod(rows: list[tuple[Labels, float]]) -> dict[PodKey, float]:
    """Index rows that carry namespace/pod/container labels."""
    return {pod_key(lb): v for lb, v in rows}


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
