"""What a crossed threshold does (called once per threshold and period by :mod:`.budgetrun`).

* every action: a Kubernetes Event (posted by :mod:`.budgetrun`), the crossing counted in
  ``finops_budget_threshold_crossings_total`` and a budget event in status;
* ``Notify`` / ``Alert``: :func:`deliver` queues the message for the NotificationChannels named by
  ``spec.notifications`` (the delivery engine, :mod:`..delivery`, sends it from the channel's timer);
  ``Alert`` is also the Warning Event and the Budget's Exceeded condition;
* ``FreezeGrowth``: :func:`freeze_growth`, the hook issue 10 part 4 fills: a ResourceQuota pull request
  through the policy's guardrails and PR machinery (``freeze_growth_finding``).
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ..budgets import Crossing, Evaluation
from ..scrub import scrub
from .budget import BudgetSpec

log = logging.getLogger(__name__)


def run_action(budget: BudgetSpec, crossing: Crossing, result: Evaluation, *, api_client: Any = None) -> str:
    """Do what the threshold's action asks; returns what was done (for the ActionTaken event)."""
    from .. import metrics
    action = crossing.threshold.action
    metrics.BUDGET_CROSSINGS.labels(budget=budget.key, threshold=crossing.threshold.id, action=action).inc()
    said = deliver(budget, crossing, result, api_client=api_client)
    if action == "FreezeGrowth":
        return f"{freeze_growth(budget, crossing, result)}; {said}"
    return said


def deliver(budget: BudgetSpec, crossing: Crossing, result: Evaluation, *, api_client: Any = None,
            now: datetime | None = None) -> str:
    """Queue the crossing for the budget's notification channels (NotificationChannels of its namespace named
    by spec.notifications); each channel's timer delivers it (Notify: high, Alert/FreezeGrowth: critical, so
    an Alert bypasses quiet hours and batching). Queued once per period and threshold (the item id)."""
    from .notifycluster import budget_items, enqueue_items
    items = budget_items(budget, crossing, result, now or crossing.at)
    if not items:
        return "Event and metric recorded"
    names = ", ".join(sorted({i.channel for i in items}))
    if api_client is None:
        return f"Event and metric recorded; not queued for {names} (no Kubernetes client)"
    try:
        enqueue_items(api_client, budget.namespace, items, now or crossing.at)
    except Exception as exc:  # a missing channel must not lose the Event: say so in the ActionTaken event
        return f"Event and metric recorded; not queued for {names}: {scrub(str(exc))}"
    return f"Event and metric recorded; queued for delivery to {names}"


def freeze_growth(budget: BudgetSpec, crossing: Crossing, result: Evaluation) -> str:
    """HOOK for issue 10 part 4: propose the ResourceQuota pull request for the scope's namespaces
    (``freeze_growth_finding(budget_name, namespace, hard, reason)`` through the policy's PR machinery)."""
    log.info("budget %s: FreezeGrowth crossed; no ResourceQuota pull request machinery in this build",
             budget.key)
    return "no ResourceQuota pull request opened (FreezeGrowth pull requests are not available in this build)"
