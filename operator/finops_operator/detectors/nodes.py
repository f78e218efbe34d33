"""Idle / under-used nodes: can a node group shrink because its pods fit on fewer nodes?

A node is **under-used** when the requests of its non-DaemonSet pods are below
``maxCpuRequestPercent`` of its allocatable CPU *and* below ``maxMemoryRequestPercent``
of its allocatable memory. DaemonSet pods do not count and do not move: they
exist on every node and leave with it (on the receiving nodes they still take room).

Consolidation is planned **within the node's node group** (a node group is what
Terraform sizes, and its nodes share instance type, labels and taints, so a pod
that ran on one fits the scheduling constraints of the others). Nodes without a
node group are skipped (nothing to resize; Karpenter consolidates those itself).

Candidates are tried least-requested first. A candidate is skipped with the
blocking reason when it is younger than ``minNodeAgeHours``, carries the node
annotation ``karpenter.sh/do-not-disrupt: "true"``, runs a pod annotated
``karpenter.sh/do-not-disrupt: "true"`` or ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"``,
a pod without a controller (it would not come back), or a pod selected by a PDB
(matchLabels, same namespace) with ``disruptions_allowed == 0``. Otherwise every
pod that must move (from this candidate and the ones already removed) is
placed by **first-fit-decreasing** (largest dominant share first) onto the
remaining schedulable nodes of the group, each filled up to ``maxFillPercent`` of
its allocatable CPU and memory. If they fit, the node is removed; the last node
of a group is never removed.

One finding per node group: ``desired_size`` n -> n - k; savings = the removed
nodes' monthly prices (spot discount applied). ``min_size`` is not known from the
cluster; the evidence says it must be at most n - k (the Terraform editor checks).

Confidence = 0.9 x (mean coverage of the removed nodes' usage series, 0.8 when
absent): requests are exact, but nodes without usage history are less known.
Risk = 0.1 + 0.5 x the highest projected fill (max of CPU and memory share of
allocatable, DaemonSets included) among the nodes that receive pods.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from typing import TYPE_CHECKING

from pydantic import Field

from ..errors import ConfigError
from ..models import (PDB, Change, ClusterState, EditKind, EditTarget, Finding, FindingType, Node, NodeGroup, Pod,
                      Target, TargetKind)
from ..pricing.allocation import Rates
from ..settings_base import Rule, SettingsModel
from ..units import human_bytes
from .base import Detector, DetectorResult, Grouping, now_of, register

if TYPE_CHECKING:
    from ..ledger import Opportunity

KARPENTER_LABEL = "karpenter.sh/nodepool"
KARPENTER_LEGACY_LABEL = "karpenter.sh/provisioner-name"


class NodeSettings(SettingsModel):
    """Idle / under-used node detection (consolidation)."""

    rules = (Rule("!has(self.maxFillPercent) || ((!has(self.maxCpuRequestPercent) || self.maxFillPercent > "
                  "self.maxCpuRequestPercent) && (!has(self.maxMemoryRequestPercent) || self.maxFillPercent > "
                  "self.maxMemoryRequestPercent))",
                  "nodes.maxFillPercent must be greater than maxCpuRequestPercent and maxMemoryRequestPercent, "
                  "otherwise an under-used node could never be repacked onto the others",
                  lambda n: n.max_fill_percent > max(n.max_cpu_request_percent, n.max_memory_request_percent),
                  field="maxFillPercent"),)

    enabled: bool = True
    max_cpu_request_percent: int = Field(default=40, ge=1, le=100, description="A node below this share of allocatable CPU requested is under-used.")
    max_memory_request_percent: int = Field(default=40, ge=1, le=100, description="A node below this share of allocatable memory requested is under-used.")
    max_fill_percent: int = Field(default=85, ge=10, le=100, description="Other nodes may be filled up to this share when repacking.")
    min_node_age_hours: int = Field(default=24, ge=0, le=8760, description="Younger nodes are never reported (they may still be filling up).")

DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
_DONE_PHASES = {"Succeeded", "Failed"}


@dataclass(slots=True)
class _Load:
    cpu: float = 0.0          # all pods, cores
    memory: float = 0.0       # all pods, bytes
    app_cpu: float = 0.0      # non-DaemonSet pods
    app_memory: float = 0.0


@dataclass(slots=True)
class _Index:
    """Built once per run: pods per node, PDBs per namespace, loads per node."""

    pods: dict[str, list[Pod]]
    pdbs: dict[str, list[PDB]]
    loads: dict[str, _Load]

    @classmethod
    def build(cls, state: ClusterState) -> "_Index":
        pods: dict[str, list[Pod]] = defaultdict(list)
        loads: dict[str, _Load] = defaultdict(_Load)
        for pod in state.pods:
            if pod.node is None or pod.phase in _DONE_PHASES:
                continue
            pods[pod.node].append(pod)
            load = loads[pod.node]
            load.cpu += pod.cpu_request
            load.memory += pod.memory_request
            if not pod.daemonset:
                load.app_cpu += pod.cpu_request
                load.app_memory += pod.memory_request
        pdbs: dict[str, list[PDB]] = defaultdict(list)
        for pdb in state.pdbs:
            pdbs[pdb.namespace].append(pdb)
        return cls(pods, pdbs, loads)


def _share(used: float, total: float) -> float:
    return used / total if total > 0 else 1.0


def _pdb_blocks(pod: Pod, pdbs: list[PDB]) -> PDB | None:
    for pdb in pdbs:
        if pdb.disruptions_allowed <= 0 and all(pod.labels.get(k) == v for k, v in pdb.selector.items()):
            return pdb
    return None


def first_fit_decreasing(pods: list[Pod], receivers: list[Node], loads: dict[str, _Load],
                         max_fill: float) -> dict[str, str] | None:
    """Place ``pods`` on ``receivers`` (pod name -> node name), or None when one does not fit."""
    if not pods:
        return {}
    free = {n.name: [n.allocatable_cpu * max_fill - loads[n.name].cpu,
                     n.allocatable_memory * max_fill - loads[n.name].memory] for n in receivers}
    ref_cpu = max((n.allocatable_cpu for n in receivers), default=1.0) or 1.0
    ref_mem = max((n.allocatable_memory for n in receivers), default=1) or 1
    order = sorted(pods, key=lambda p: (-max(p.cpu_request / ref_cpu, p.memory_request / ref_mem),
                                        p.namespace, p.name))
    placement: dict[str, str] = {}
    for pod in order:
        for node in receivers:
            room = free[node.name]
            if pod.cpu_request <= room[0] + 1e-9 and pod.memory_request <= room[1] + 1e-9:
                room[0] -= pod.cpu_request
                room[1] -= pod.memory_request
                placement[f"{pod.namespace}/{pod.name}"] = node.name
                break
        else:
            return None
    return placement


@register
class IdleNodes(Detector):
    """Node groups that can shrink because their pods fit on fewer nodes."""

    name = "idle-nodes"
    finding_type = FindingType.IDLE_NODE
    target_kind = TargetKind.NODE_GROUP
    edit_kinds = (EditKind.NODE_GROUP,)
    settings_key = "nodes"
    settings_model = NodeSettings
    grouping = Grouping(label="node groups", change_set="node-groups", verb="Consolidate", noun="node group")
    permissions = ("kubernetes:list:nodes", "kubernetes:list:pods", "kubernetes:list:poddisruptionbudgets")
    unit = "node group"      # what a set of nodes repacked together is called in skip reasons

    @classmethod
    def realized_savings(cls, opp: "Opportunity", state: ClusterState, rates: Rates) -> float | None:
        """The estimate, once the group runs at most the proposed number of nodes."""
        name = opp.target.split("/", 1)[-1]              # "node-group/<name>"
        after = next((c.get("after") for c in opp.changes if c.get("field") == "desired_size"), None)
        count = sum(1 for n in state.nodes if n.node_group == name)
        return opp.estimated_monthly_savings if after is not None and count <= int(after) else None

    def run(self, state: ClusterState) -> DetectorResult:
        result = DetectorResult()
        index = _Index.build(state)
        groups: dict[str, list[Node]] = defaultdict(list)
        for node in state.nodes:
            if node.labels.get(KARPENTER_LABEL) or node.labels.get(KARPENTER_LEGACY_LABEL):
                result.skipped.append(self.skip(f"node/{node.name}", "a Karpenter node: its NodePool is not a node "
                                                "group; Karpenter consolidates it (disruption.consolidationPolicy)"))
            elif node.node_group:
                groups[node.node_group].append(node)
            elif self._under_used(node, index):
                result.skipped.append(self.skip(f"node/{node.name}", "under-used but in no node group: "
                                                "no desired size to change (Karpenter consolidates such nodes)"))
        for group in sorted(groups):
            finding = self._group(state, group, sorted(groups[group], key=lambda n: n.name), index, result)
            if finding is not None:
                result.findings.append(finding)
        return result

    def _under_used(self, node: Node, index: _Index) -> bool:
        cfg = self.config
        load = index.loads.get(node.name, _Load())
        return (_share(load.app_cpu, node.allocatable_cpu) * 100 < cfg.max_cpu_request_percent
                and _share(load.app_memory, node.allocatable_memory) * 100 < cfg.max_memory_request_percent)

    def _bounds(self, state: ClusterState, group: str) -> NodeGroup | None:
        """The group's configured sizes (a min_size stops removals), when known."""
        return state.node_group(group)

    def _blocker(self, node: Node, state: ClusterState, index: _Index) -> str | None:
        cfg = self.config
        if node.created_at is not None:
            age = now_of(state) - node.created_at
            if age < timedelta(hours=cfg.min_node_age_hours):
                return (f"node is only {age.total_seconds() / 3600:.1f}h old "
                        f"(minNodeAgeHours {cfg.min_node_age_hours})")
        if node.annotations.get(DO_NOT_DISRUPT, "").lower() == "true":
            return f'node annotation {DO_NOT_DISRUPT}: "true"'
        for pod in index.pods.get(node.name, []):
            if pod.daemonset:
                continue
            where = f"pod {pod.namespace}/{pod.name}"
            if pod.annotations.get(DO_NOT_DISRUPT, "").lower() == "true":
                return f'{where} has annotation {DO_NOT_DISRUPT}: "true"'
            if pod.annotations.get(SAFE_TO_EVICT, "").lower() == "false":
                return f'{where} has annotation {SAFE_TO_EVICT}: "false"'
            if pod.owner is None:
                return f"{where} has no controller: evicted, it would not be recreated elsewhere"
            pdb = _pdb_blocks(pod, index.pdbs.get(pod.namespace, []))
            if pdb is not None:
                return f"{where} is covered by PodDisruptionBudget {pdb.namespace}/{pdb.name} with 0 disruptions allowed"
        return None

    def _group(self, state: ClusterState, group: str, nodes: list[Node], index: _Index,
               result: DetectorResult) -> Finding | None:
        max_fill = self.config.max_fill_percent / 100
        candidates = sorted((n for n in nodes if self._under_used(n, index)),
                            key=lambda n: (_share(index.loads.get(n.name, _Load()).app_cpu, n.allocatable_cpu)
                                           + _share(index.loads.get(n.name, _Load()).app_memory,
                                                    n.allocatable_memory), n.name))
        bounds = self._bounds(state, group)
        removed: list[Node] = []
        moving: list[Pod] = []
        placement: dict[str, str] = {}
        for node in candidates:
            target = f"node/{node.name}"
            if len(nodes) - len(removed) <= 1:
                result.skipped.append(self.skip(target, f"last node of {self.unit} {group}: never removed"))
                break
            if bounds and bounds.min_size is not None and len(nodes) - len(removed) <= bounds.min_size:
                result.skipped.append(self.skip(target, f"{self.unit} {group} is at its min_size {bounds.min_size}: "
                                                "lower min_size yourself if fewer nodes are acceptable"))
                break
            blocker = self._blocker(node, state, index)
            if blocker:
                result.skipped.append(self.skip(target, f"under-used but blocked: {blocker}"))
                continue
            own = [p for p in index.pods.get(node.name, []) if not p.daemonset]
            gone = {n.name for n in removed} | {node.name}
            receivers = [n for n in nodes if n.name not in gone and not n.unschedulable]
            plan = first_fit_decreasing(moving + own, receivers, index.loads, max_fill)
            if plan is None:
                result.skipped.append(self.skip(target, f"under-used, but its pods do not fit on the other "
                                                f"nodes of {self.unit} {group} at maxFillPercent {max_fill:.0%}"))
                continue
            removed.append(node)
            moving.extend(own)
            placement = plan
        if not removed:
            return None
        try:
            return self._finding(state, group, nodes, removed, moving, placement, index)
        except ConfigError as exc:
            result.skipped.append(self.skip(f"node-group/{group}", f"cannot price the nodes: {exc}"))
            return None

    def _finding(self, state: ClusterState, group: str, nodes: list[Node], removed: list[Node],
                 moving: list[Pod], placement: dict[str, str], index: _Index) -> Finding:
        cfg = self.config
        prices = {n.name: self.prices.node_monthly(n.instance_type, n.capacity_type) for n in removed}
        savings = sum(prices.values())
        group_cost = sum(self.prices.node_monthly(n.instance_type, n.capacity_type) for n in nodes)
        fill = _projected_fill(nodes, removed, moving, placement, index)
        receiving = set(placement.values())
        peak_fill = max((max(v["cpu_percent"], v["memory_percent"]) for k, v in fill.items() if k in receiving),
                        default=0.0) / 100
        coverages = [n.cpu_usage.coverage if n.cpu_usage else 0.8 for n in removed]
        conf = round(0.9 * sum(coverages) / len(coverages), 4)
        risk = round(min(1.0, 0.1 + 0.5 * peak_fill), 4)
        before, after = len(nodes), len(nodes) - len(removed)
        labels: dict[str, str] = {}
        for n in removed:
            labels.update(n.labels)
        evidence: dict[str, object] = {
            "node_group": group, "node_count_before": before, "node_count_after": after,
            "nodes_removed": [_node_row(n, index, prices[n.name]) for n in removed],
            "pods_moved": [{"pod": f"{p.namespace}/{p.name}", "owner": str(p.owner) if p.owner else None,
                            "from": p.node, "to": placement.get(f"{p.namespace}/{p.name}"),
                            "cpu_request": round(p.cpu_request, 4), "memory_request": p.memory_request}
                           for p in moving],
            "receivers_after": fill, "max_fill_percent": cfg.max_fill_percent,
            "thresholds": {"max_cpu_request_percent": cfg.max_cpu_request_percent,
                           "max_memory_request_percent": cfg.max_memory_request_percent},
            "instance_types": sorted({n.instance_type for n in nodes}),
            "capacity_types": sorted({n.capacity_type for n in removed}),
            "min_size_at_most": after,
            "method": "first-fit-decreasing within the node group, receivers filled up to maxFillPercent",
            "savings_formula": "sum of removed nodes' hourly price x 730 h",
        }
        return Finding(
            detector=self.name, type=self.finding_type, target=Target(TargetKind.NODE_GROUP, group),
            title=f"Shrink node group {group}: {before} -> {after} nodes",
            changes=[Change("desired_size", str(before), str(after))],
            monthly_savings=round(savings, 2), confidence=conf, risk=risk, edit=EditTarget(EditKind.NODE_GROUP),
            cost_before=round(group_cost, 2), cost_after=round(group_cost - savings, 2),
            evidence=evidence, labels=labels,
            team=labels.get("team"), cluster=state.cluster,
            notes=[f"{len(moving)} pods move to the remaining nodes; DaemonSet pods are not counted",
                   f"min_size must be at most {after} for the new desired size to take effect"])


def _node_row(node: Node, index: _Index, monthly: float) -> dict[str, object]:
    load = index.loads.get(node.name, _Load())
    return {"node": node.name, "instance_type": node.instance_type, "capacity_type": node.capacity_type,
            "zone": node.zone, "monthly_price": round(monthly, 2),
            "cpu_requested_percent": round(_share(load.app_cpu, node.allocatable_cpu) * 100, 1),
            "memory_requested_percent": round(_share(load.app_memory, node.allocatable_memory) * 100, 1),
            "memory_requested": human_bytes(load.app_memory)}


def _projected_fill(nodes: list[Node], removed: list[Node], moving: list[Pod], placement: dict[str, str],
                    index: _Index) -> dict[str, dict[str, float]]:
    """Per remaining node: CPU and memory requested (percent of allocatable) after the move."""
    gone = {n.name for n in removed}
    extra: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for pod in moving:
        to = placement.get(f"{pod.namespace}/{pod.name}")
        if to:
            extra[to][0] += pod.cpu_request
            extra[to][1] += pod.memory_request
    out: dict[str, dict[str, float]] = {}
    for node in nodes:
        if node.name in gone:
            continue
        load = index.loads.get(node.name, _Load())
        out[node.name] = {
            "cpu_percent": round(_share(load.cpu + extra[node.name][0], node.allocatable_cpu) * 100, 1),
            "memory_percent": round(_share(load.memory + extra[node.name][1], node.allocatable_memory) * 100, 1)}
    return out
