"""Group an Allocation's charges the ways people ask: namespace, team, workload, node, label:KEY, category, service.

Idle, shared and unallocated costs are their own rows ("(idle)", "(shared)",
"(unallocated)") in every grouping, so a table always adds up to the total.
"""
from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from ..models.costs import Allocation, Charge, ChargeKind

GROUPINGS = ("namespace", "team", "workload", "node", "label:KEY", "category", "service")

_OWN_ROW = {ChargeKind.IDLE: "(idle)", ChargeKind.SHARED: "(shared)", ChargeKind.UNALLOCATED: "(unallocated)"}


def _owned(key: Callable[[Charge], str]) -> Callable[[Charge], str]:
    """Container and volume charges by ``key``; idle, shared and unallocated as their own rows."""
    return lambda c: _OWN_ROW.get(c.kind) or key(c) or "(none)"


def _workload(c: Charge) -> str:
    return f"{c.namespace}/{c.workload or '(no workload)'}"


def _node(c: Charge) -> str:
    if c.kind is ChargeKind.IDLE:
        return f"{c.node} (idle)"
    if c.kind is ChargeKind.CONTAINER:
        return c.node or "(unknown node)"
    return _OWN_ROW.get(c.kind) or "(storage)"


def _category(c: Charge) -> str:
    if c.kind is ChargeKind.CONTAINER:
        return "node"
    if c.kind is ChargeKind.UNALLOCATED:
        return f"(unallocated) {c.category.value}"
    return c.kind.value if c.kind is ChargeKind.IDLE else c.category.value


def grouping(by: str) -> Callable[[Charge], str]:
    """The key function of one grouping; ``label:KEY`` groups by the pods' label KEY."""
    if by.startswith("label:") and len(by) > len("label:"):
        label = by[len("label:"):]
        return _owned(lambda c: c.labels.get(label, f"(no {label})") if c.kind is ChargeKind.CONTAINER
                      else f"(no {label})")
    keys: dict[str, Callable[[Charge], str]] = {
        "namespace": _owned(lambda c: c.namespace),
        "team": _owned(lambda c: c.team or "unassigned"),
        "workload": _owned(_workload),
        "node": _node,
        "category": _category,
        "service": lambda c: c.service or "(price book)",
    }
    if by not in keys:
        raise ConfigError(f"cannot group costs by {by!r}; use one of {', '.join(GROUPINGS)}", field="by")
    return keys[by]


def group_charges(allocation: Allocation, by: str) -> dict[str, float]:
    """Total cost per group, largest first."""
    totals = allocation.group_by(grouping(by))
    return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))
