"""Handing out what no container asked for: node idle and cluster-wide (shared) costs.

Both work on per-container arrays (the rows of a :class:`UsageHours`) and return
how much each row receives; rows that never ran receive nothing. When there is no
row to receive a cost, it stays its own row (the caller keeps it, and notes why).
"""
from __future__ import annotations

import numpy as np

from .settings import SharedPolicy


def proportional(amount: float, weights: np.ndarray) -> np.ndarray | None:
    """``amount`` split in proportion to ``weights`` (None when they sum to nothing)."""
    total = float(weights.sum())
    if amount == 0.0:
        return np.zeros_like(weights)
    if total <= 0.0:
        return None
    return amount * weights / total


def even_by_group(amount: float, groups: np.ndarray, weights: np.ndarray, eligible: np.ndarray) -> np.ndarray | None:
    """The same amount per group (eligible rows' groups), then by ``weights`` inside it (evenly when all 0)."""
    if amount == 0.0:
        return np.zeros(len(groups))
    names = np.unique(groups[eligible])
    if len(names) == 0:
        return None
    out = np.zeros(len(groups))
    each = amount / len(names)
    codes = np.searchsorted(names, groups)
    for g in range(len(names)):
        rows = eligible & (codes == g) & (groups == names[g])
        w = weights[rows]
        out[rows] = each * (w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w)))
    return out


def shared_out(policy: SharedPolicy, amount: float, *, cpu: np.ndarray, cost: np.ndarray,
               namespaces: np.ndarray, ran: np.ndarray) -> np.ndarray | None:
    """Each row's part of the cluster-wide ``amount`` under ``policy`` (None: nobody to share it with)."""
    if policy is SharedPolicy.REPORT:
        return None
    if policy is SharedPolicy.EVEN:
        return even_by_group(amount, namespaces, cost, ran)
    weights = cpu if policy is SharedPolicy.BY_CPU else cost
    return proportional(amount, np.where(ran, weights, 0.0))
