"""Nodes and pods for a simulated cluster: instance sizes, names, a bin-packer.

Allocatable follows the EKS AMI bootstrap defaults: CPU reserved 6% of the first
core, 1% of the second, 0.5% of cores 3-4 and 0.25% above; memory reserved
``255Mi + 11Mi x maxPods`` plus the 100Mi hard-eviction threshold. vCPU, memory
and max pods (VPC CNI without prefix delegation) are from the AWS instance type
pages for the types listed in :data:`INSTANCE_TYPES`.

Pod names look like the real thing: Deployment ``name-<10 hex rs hash>-<5>``,
StatefulSet ``name-0..N-1``, DaemonSet ``name-<5>`` on every node, CronJob
``name-<job id>-<5>``. Everything is derived from hashes of names and the seed,
so adding a workload never renames another's pods.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from ..models import Node, Pod, Workload, WorkloadRef, pod_requests

MI = 2**20
GI = 2**30

#: instance type -> (vCPU, memory GiB, max pods)
INSTANCE_TYPES: dict[str, tuple[int, int, int]] = {
    "t3.medium": (2, 4, 17), "t3.large": (2, 8, 35), "t3.xlarge": (4, 16, 58), "t3.2xlarge": (8, 32, 58),
    "m5.large": (2, 8, 29), "m5.xlarge": (4, 16, 58), "m5.2xlarge": (8, 32, 58), "m5.4xlarge": (16, 64, 234),
    "m6i.large": (2, 8, 29), "m6i.xlarge": (4, 16, 58), "m6i.2xlarge": (8, 32, 58), "m6i.4xlarge": (16, 64, 234),
    "m7g.large": (2, 8, 29), "m7g.xlarge": (4, 16, 58), "m7g.2xlarge": (8, 32, 58),
    "c5.large": (2, 4, 29), "c5.xlarge": (4, 8, 58), "c5.2xlarge": (8, 16, 58), "c5.4xlarge": (16, 32, 234),
    "c6i.xlarge": (4, 8, 58), "c6i.2xlarge": (8, 16, 58),
    "r5.large": (2, 16, 29), "r5.xlarge": (4, 32, 58), "r5.2xlarge": (8, 64, 58), "r5.4xlarge": (16, 128, 234),
    "r6i.xlarge": (4, 32, 58), "r6i.2xlarge": (8, 64, 58),
}

_SAFE = "bcdfghjklmnpqrstvwxz2456789"   # k8s.io/apimachinery rand.SafeEncodeString alphabet


def allocatable(instance_type: str) -> tuple[float, int]:
    """(cores, bytes) a kubelet on an EKS node of this type offers to pods."""
    vcpu, gib, max_pods = INSTANCE_TYPES[instance_type]
    reserved_m = 60 + (10 if vcpu >= 2 else 0) + 5 * max(0, min(vcpu, 4) - 2) + 2.5 * max(0, vcpu - 4)
    reserved_mem = (255 + 11 * max_pods + 100) * MI
    return (vcpu * 1000 - reserved_m) / 1000.0, gib * GI - reserved_mem


def digest(*parts: object) -> bytes:
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()


def seed_of(*parts: object) -> int:
    """A 64-bit seed from names: stable across runs and Python processes."""
    return int.from_bytes(digest(*parts)[:8], "little")


def safe_suffix(length: int, *parts: object) -> str:
    raw = digest(*parts)
    return "".join(_SAFE[b % len(_SAFE)] for b in raw[:length])


def node_name(seed: int, group: str, index: int) -> str:
    """EKS-style private DNS name: ip-10-x-y-z.ec2.internal."""
    raw = digest(seed, "node", group, index)
    return f"ip-10-{raw[0] % 64}-{raw[1]}-{raw[2] % 254 + 1}.ec2.internal"


def instance_id(seed: int, node: str) -> str:
    """EC2 instance id of a simulated node: ``i-0`` + 16 hex (17 hex digits, as AWS issues them)."""
    return "i-0" + digest(seed, "instance", node).hex()[:16]


def provider_id(node: Node) -> str:
    """The node's ``spec.providerID`` as the AWS cloud provider writes it: ``aws:///<zone>/<instance id>``."""
    return f"aws:///{node.zone or ''}/{node.instance_id or ''}"


def created_ts(node: Node) -> int | None:
    """Epoch second the node was created (None: unknown, taken as before any window)."""
    return None if node.created_at is None else int(node.created_at.timestamp())


def present_at(node: Node, times: np.ndarray) -> np.ndarray:
    """bool per time: the node existed (a node lives from ``created_at`` to the end of the simulation)."""
    created = created_ts(node)
    return np.ones(len(times), dtype=bool) if created is None else times >= created


def hour_shares(nodes: list[Node], hours: np.ndarray) -> np.ndarray:
    """float [N, H]: the share of each hour (starting at ``hours``) each node existed, 0..1.

    The one lifetime rule the bill (per-second billing), usage hours and OpenMetrics share:
    a node created at 10:45 exists for 0.25 of the 10:00 hour and all later hours.
    """
    created = np.array([created_ts(n) if n.created_at is not None else np.iinfo(np.int64).min // 2
                        for n in nodes], dtype=np.int64)
    ends = hours.astype(np.int64)[None, :] + 3600
    return np.clip((ends - created[:, None]) / 3600.0, 0.0, 1.0)


def node_labels(name: str, instance_type: str, group: str | None, zone: str | None, capacity: str) -> dict[str, str]:
    labels = {"kubernetes.io/hostname": name, "node.kubernetes.io/instance-type": instance_type,
              "kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64" if "g." in instance_type else "amd64",
              "eks.amazonaws.com/capacityType": "SPOT" if capacity == "spot" else "ON_DEMAND"}
    if group:
        labels["eks.amazonaws.com/nodegroup"] = group
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    return labels


def make_node(name: str, instance_type: str, group: str | None, zone: str | None, capacity: str,
              created: datetime, labels: dict[str, str], annotations: dict[str, str],
              unschedulable: bool = False, instance: str | None = None) -> Node:
    cpu, mem = allocatable(instance_type)
    all_labels = node_labels(name, instance_type, group, zone, capacity) | labels
    return Node(name, instance_type, group, cpu, mem, zone, capacity, all_labels, dict(annotations),
                unschedulable, created, instance)


def pod_names(seed: int, workload: Workload, end: datetime) -> list[str]:
    """Names of the pods a non-DaemonSet workload runs."""
    ref = workload.ref
    if ref.kind == "StatefulSet":
        return [f"{ref.name}-{i}" for i in range(workload.replicas)]
    if ref.kind == "CronJob":
        return [f"{job_name(ref.name, end)}-{safe_suffix(5, seed, ref, 'pod', i)}" for i in range(workload.replicas)]
    rs = replicaset_name(seed, ref)
    return [f"{rs}-{safe_suffix(5, seed, ref, 'pod', i)}" for i in range(workload.replicas)]


def _unique(used: set[str], make) -> str:
    """The first of make(0), make(1), ... not in ``used`` (5-char hashes collide at a few thousand pods)."""
    attempt = 0
    name = make(attempt)
    while name in used:
        attempt += 1
        name = make(attempt)
    used.add(name)
    return name


def replicaset_name(seed: int, ref: WorkloadRef) -> str:
    return f"{ref.name}-{digest(seed, ref, 'rs').hex()[:10]}"


def job_name(cronjob: str, end: datetime) -> str:
    """CronJob controller names jobs by the scheduled time in minutes since the epoch."""
    return f"{cronjob}-{int((end - timedelta(hours=1)).timestamp()) // 60}"


@dataclass(slots=True)
class _Bins:
    """Free capacity per node, packed most-allocated first (leaves trailing nodes idle)."""

    names: list[str]
    groups: np.ndarray
    cpu: np.ndarray
    mem: np.ndarray
    ok: np.ndarray

    def place(self, cpu: float, mem: int, group: str | None) -> str | None:
        fits = self.ok & (self.cpu >= cpu - 1e-9) & (self.mem >= mem)
        if group is not None:
            fits &= self.groups == group
        if not fits.any():
            return None
        index = int(np.argmax(fits))
        self.cpu[index] -= cpu
        self.mem[index] -= mem
        return self.names[index]


def place_pods(seed: int, workloads: list[Workload], nodes: list[Node], end: datetime,
               pinned: dict[WorkloadRef, str], pod_annotations: dict[WorkloadRef, dict[str, str]]) -> list[Pod]:
    """DaemonSet pods on every schedulable node first, then first-fit decreasing by CPU.

    Pods that fit nowhere stay ``Pending`` with no node, as the scheduler would leave them.
    """
    bins = _Bins([n.name for n in nodes], np.array([n.node_group or "" for n in nodes], dtype=object),
                 np.array([n.allocatable_cpu for n in nodes], dtype=np.float64),
                 np.array([n.allocatable_memory for n in nodes], dtype=np.float64),
                 np.array([not n.unschedulable for n in nodes], dtype=bool))
    pods: list[Pod] = []
    for w in (w for w in workloads if w.ref.kind == "DaemonSet"):
        cpu, mem = pod_requests(w.containers)
        used: set[str] = set()
        for index, node in enumerate(nodes):
            if node.unschedulable:
                continue
            bins.cpu[index] -= cpu
            bins.mem[index] -= mem
            name = _unique(used, lambda attempt: f"{w.ref.name}-"
                           f"{safe_suffix(5, seed, w.ref, node.name, *((attempt,) if attempt else ()))}")
            pods.append(_pod(w, name, node.name, cpu, mem, pod_annotations, daemonset=True))
    queue = []
    for w in (w for w in workloads if w.ref.kind != "DaemonSet"):
        cpu, mem = pod_requests(w.containers)
        queue += [(cpu, mem, name, w) for name in pod_names(seed, w, end)]
    queue.sort(key=lambda item: (-item[0], -item[1], item[2]))
    for cpu, mem, name, w in queue:
        node = bins.place(cpu, mem, pinned.get(w.ref))
        pods.append(_pod(w, name, node, cpu, mem, pod_annotations))
    return pods


def _pod(w: Workload, name: str, node: str | None, cpu: float, mem: int,
         annotations: dict[WorkloadRef, dict[str, str]], daemonset: bool = False) -> Pod:
    labels = {"app": w.ref.name} | w.labels
    return Pod(w.ref.namespace, name, node, w.ref, cpu, mem, labels, dict(annotations.get(w.ref, {})),
               daemonset, "Running" if node else "Pending")
