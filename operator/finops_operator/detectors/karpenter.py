"""Karpenter NodePools whose disruption policy keeps under-used nodes alive.

The nodes of a NodePool (label ``karpenter.sh/nodepool: <name>``) are not a node
group: Karpenter launches and removes them, and no desired size exists to edit.
What decides whether an under-used node goes is the NodePool's
``spec.disruption`` (karpenter.sh/v1):

* ``consolidationPolicy: WhenEmpty`` removes only nodes without app pods; under-used
  nodes stay. ``WhenEmptyOrUnderutilized`` also removes a node whose pods fit elsewhere.
* ``consolidateAfter`` is how long a node must have been consolidatable first;
  ``Never`` turns consolidation off, a long wait keeps nodes for hours.
* ``budgets`` cap how many nodes may be disrupted at once; a budget of ``nodes: "0"``
  without a schedule (for all reasons, or ``Underutilized``) blocks it altogether.

A NodePool is reported when its nodes are under-used and repackable exactly as the
idle-node detector judges a node group (its thresholds, blockers and
first-fit-decreasing repacking, from :mod:`.nodes`; pods move only within the pool,
so the estimate is a lower bound of what Karpenter, which also uses other pools and
cheaper replacements, can free) while its policy keeps them. The proposal is the
policy change that lets Karpenter do it: ``consolidationPolicy:
WhenEmptyOrUnderutilized`` and/or ``consolidateAfter: <consolidateAfterSeconds>``,
as an edit of the NodePool manifest. A budget that blocks at all times is not
edited (it is a deliberate choice): the NodePool is skipped with the budget named,
since a policy change would not take effect. ``limits`` cap what a pool may
launch; lowering them removes no node, so they are shown in the evidence only.

Savings = the monthly prices of the nodes the repacking frees. Confidence = 0.85 x
mean usage coverage of those nodes (0.8 when absent): Karpenter chooses the nodes
itself. Risk = 0.15 + 0.5 x the highest projected fill of a receiving node (pods are
evicted by Karpenter, continuously, not once).

Realized once the pool runs at most the estimated node count (change ``nodes``).
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import TYPE_CHECKING

from pydantic import Field

from ..errors import ConfigError
from ..models import (Change, ClusterState, ConsolidationPolicy, DisruptionBudget, EditKind, EditTarget, Finding,
                      FindingType, Node, NodeGroup, NodePool, Pod, Target, TargetKind)
from ..pricing.allocation import Rates
from ..units import parse_duration
from .base import DetectorResult, Grouping, register
from .nodes import KARPENTER_LABEL, IdleNodes, NodeSettings, _Index, _node_row, _projected_fill

if TYPE_CHECKING:
    from ..ledger import Opportunity

POLICY_FIELD = "spec.disruption.consolidationPolicy"
AFTER_FIELD = "spec.disruption.consolidateAfter"
NODES_FIELD = "nodes"           # the expected node count: measured, never written
_ZERO = re.compile(r"^(0+(ms|s|m|h))+$")


class NodePoolSettings(NodeSettings):
    """``spec.detectors.nodePools``: the under-use thresholds of ``nodes``, and the wait to propose."""

    consolidate_after_seconds: int = Field(
        default=300, ge=0, le=86400,
        description="consolidateAfter proposed for a NodePool that waits longer (or Never); 0 = at once")


def pool_of(node: Node) -> str | None:
    """The NodePool a node belongs to (its ``karpenter.sh/nodepool`` label)."""
    return node.labels.get(KARPENTER_LABEL) or None


def after_seconds(pool: NodePool) -> float:
    """``consolidateAfter`` in seconds: absent = 0 (the v1 default), ``Never`` = infinity.

    ConfigError naming the NodePool and field for a value this operator cannot read (decimals, say).
    """
    text = pool.consolidate_after
    if text is None or _ZERO.match(text):
        return 0.0
    if text == "Never":
        return math.inf
    return parse_duration(text, source=f"NodePool {pool.name}", field=AFTER_FIELD).total_seconds()


def go_duration(seconds: int) -> str:
    """300 -> "5m", 3600 -> "1h", 90 -> "90s" (as Karpenter writes it)."""
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def blocking_budget(pool: NodePool) -> tuple[int, DisruptionBudget] | None:
    """A budget that allows no node to be consolidated at any time, with its index."""
    for i, budget in enumerate(pool.budgets):
        zero = budget.nodes.strip().rstrip("%").strip() in ("0", "00")
        covers = not budget.reasons or "Underutilized" in budget.reasons
        if zero and covers and budget.schedule is None:
            return i, budget
    return None


@register
class NodePoolConsolidation(IdleNodes):
    """NodePools that keep under-used nodes; proposes the disruption policy that consolidates them."""

    name = "nodepool-consolidation"
    finding_type = FindingType.NODEPOOL_CONSOLIDATION
    target_kind = TargetKind.NODE_POOL
    edit_kinds = (EditKind.NODE_POOL,)
    settings_key = "node_pools"
    settings_model = NodePoolSettings
    grouping = Grouping(label="NodePools", change_set="node-pools", verb="Consolidate", noun="NodePool")
    permissions = ("kubernetes:list:nodes", "kubernetes:list:pods", "kubernetes:list:poddisruptionbudgets",
                   "kubernetes:list:nodepools.karpenter.sh")
    unit = "NodePool"

    @classmethod
    def realized_savings(cls, opp: "Opportunity", state: ClusterState, rates: Rates) -> float | None:
        """The estimate, once the pool runs at most the estimated number of nodes."""
        name = opp.target.split("/", 1)[-1]              # "node-pool/<name>"
        after = next((c.get("after") for c in opp.changes if c.get("field") == NODES_FIELD), None)
        count = sum(1 for n in state.nodes if pool_of(n) == name)
        return opp.estimated_monthly_savings if after is not None and count <= int(after) else None

    def run(self, state: ClusterState) -> DetectorResult:
        result = DetectorResult()
        index = _Index.build(state)
        pools: dict[str, list[Node]] = defaultdict(list)
        for node in state.nodes:
            if pool_of(node):
                pools[pool_of(node)].append(node)   # type: ignore[index]
        for name in sorted(pools):
            nodes = sorted(pools[name], key=lambda n: n.name)
            reason = self._keeps_nodes(state.node_pool(name), nodes, index)
            if reason:
                result.skipped.append(self.skip(f"node-pool/{name}", reason))
                continue
            finding = self._group(state, name, nodes, index, result)
            if finding is not None:
                result.findings.append(finding)
        return result

    def _keeps_nodes(self, pool: NodePool | None, nodes: list[Node], index: _Index) -> str | None:
        """Why this pool is not judged (None: its policy keeps under-used nodes and a change takes effect)."""
        if pool is None:
            return ("its nodes carry karpenter.sh/nodepool but the NodePool is not in the inventory "
                    "(Karpenter's CRD not installed or not readable): its disruption policy is unknown")
        try:
            changes, _ = self.proposal(pool)
        except ConfigError as exc:
            return f"cannot read the NodePool: {exc}"
        blocked = blocking_budget(pool)
        if blocked is not None:
            return (f"spec.disruption.budgets[{blocked[0]}] allows {blocked[1].nodes!r} nodes at all times: no "
                    "consolidation takes effect whatever the policy; raise that budget (e.g. nodes: \"10%\") or "
                    "give it a schedule, then this NodePool is judged")
        if not changes:
            if any(self._under_used(n, index) for n in nodes):
                return (f"under-used nodes, but consolidationPolicy is {pool.consolidation_policy.value} with "
                        f"consolidateAfter {pool.consolidate_after or '0s'}: Karpenter removes them itself")
            return "no under-used nodes and the policy already consolidates"
        return None

    def proposal(self, pool: NodePool) -> tuple[list[Change], list[str]]:
        """The disruption changes that let Karpenter consolidate ``pool``, and why each one."""
        changes: list[Change] = []
        why: list[str] = []
        wanted = ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED
        if pool.consolidation_policy != wanted:
            changes.append(Change(POLICY_FIELD, pool.consolidation_policy.value, wanted.value))
            why.append(f"consolidationPolicy {pool.consolidation_policy.value} removes only empty nodes: "
                       "under-used ones stay")
        limit = self.config.consolidate_after_seconds
        if after_seconds(pool) > limit:
            changes.append(Change(AFTER_FIELD, pool.consolidate_after, go_duration(limit)))
            why.append(f"consolidateAfter {pool.consolidate_after} "
                       + ("turns consolidation off" if pool.consolidate_after == "Never" else
                          f"keeps a consolidatable node longer than {go_duration(limit)} "
                          "(nodePools.consolidateAfterSeconds)"))
        return changes, why

    def _bounds(self, state: ClusterState, group: str) -> NodeGroup | None:
        return None                                      # a NodePool has no min_size: Karpenter sizes it

    def _finding(self, state: ClusterState, group: str, nodes: list[Node], removed: list[Node],
                 moving: list[Pod], placement: dict[str, str], index: _Index) -> Finding:
        pool = state.node_pool(group)
        assert pool is not None                          # run() judged only pools in the inventory
        changes, why = self.proposal(pool)
        prices = {n.name: self.prices.node_monthly(n.instance_type, n.capacity_type) for n in removed}
        savings = sum(prices.values())
        pool_cost = sum(self.prices.node_monthly(n.instance_type, n.capacity_type) for n in nodes)
        fill = _projected_fill(nodes, removed, moving, placement, index)
        receiving = set(placement.values())
        peak = max((max(v["cpu_percent"], v["memory_percent"]) for k, v in fill.items() if k in receiving),
                   default=0.0) / 100
        coverages = [n.cpu_usage.coverage if n.cpu_usage else 0.8 for n in removed]
        before, after = len(nodes), len(nodes) - len(removed)
        labels: dict[str, str] = {}
        for n in removed:
            labels.update(n.labels)
        proposed = ", ".join(f"{c.field.rsplit('.', 1)[-1]} {c.after}" for c in changes)
        return Finding(
            detector=self.name, type=self.finding_type, target=Target(TargetKind.NODE_POOL, group),
            title=f"Consolidate NodePool {group}: {proposed} ({before} -> {after} nodes)",
            changes=changes + [Change(NODES_FIELD, str(before), str(after))],
            monthly_savings=round(savings, 2), confidence=round(0.85 * sum(coverages) / len(coverages), 4),
            risk=round(min(1.0, 0.15 + 0.5 * peak), 4), edit=EditTarget(EditKind.NODE_POOL),
            cost_before=round(pool_cost, 2), cost_after=round(pool_cost - savings, 2),
            evidence=self._evidence(pool, nodes, removed, moving, placement, index, prices, fill, why),
            labels=labels, team=labels.get("team"), cluster=state.cluster,
            notes=why + [f"Karpenter then removes about {len(removed)} of {before} nodes, moving {len(moving)} "
                         "pods; it honours PodDisruptionBudgets and karpenter.sh/do-not-disrupt",
                         "limits (unchanged) cap what the pool may launch: "
                         + (", ".join(f"{k} {v}" for k, v in sorted(pool.limits.items())) or "none")])

    def _evidence(self, pool: NodePool, nodes: list[Node], removed: list[Node], moving: list[Pod],
                  placement: dict[str, str], index: _Index, prices: dict[str, float],
                  fill: dict[str, dict[str, float]], why: list[str]) -> dict[str, object]:
        cfg = self.config
        return {
            "node_pool": pool.name, "consolidation_policy": pool.consolidation_policy.value,
            "consolidate_after": pool.consolidate_after, "limits": dict(pool.limits),
            "budgets": [{"nodes": b.nodes, "reasons": list(b.reasons), "schedule": b.schedule,
                         "duration": b.duration} for b in pool.budgets],
            "why_kept": why, "node_count_before": len(nodes), "node_count_after": len(nodes) - len(removed),
            "nodes_removed": [_node_row(n, index, prices[n.name]) for n in removed],
            "pods_moved": [{"pod": f"{p.namespace}/{p.name}", "from": p.node,
                            "to": placement.get(f"{p.namespace}/{p.name}")} for p in moving],
            "receivers_after": fill, "max_fill_percent": cfg.max_fill_percent,
            "thresholds": {"max_cpu_request_percent": cfg.max_cpu_request_percent,
                           "max_memory_request_percent": cfg.max_memory_request_percent},
            "instance_types": sorted({n.instance_type for n in nodes}),
            "method": "first-fit-decreasing within the NodePool (a lower bound: Karpenter may also move pods "
                      "to other pools or replace nodes with cheaper ones)",
            "savings_formula": "sum of the freed nodes' hourly price x 730 h",
        }
