"""What a crossed threshold does (called once per threshold and period by :mod:`.budgetrun`).

* every action: a Kubernetes Event (posted by :mod:`.budgetrun`), the crossing counted in
  ``finops_budget_threshold_crossings_total`` and a budget event in status;
* ``Notify`` / ``Alert``: :func:`deliver` hands the message to the notification channels of
  ``spec.notifications`` - the hook the insights issue's channels plug into (nothing is sent yet, and
  the status says so); ``Alert`` is also the Warning Event and the Budget's Exceeded condition;
* ``FreezeGrowth``: :func:`freeze_growth`, the hook issue 10 part 4 fills: a ResourceQuota pull request
  through the policy's guardrails and PR machinery (``freeze_growth_finding``).
"""
from __future__ import annotations

import logging

from ..budgets import Crossing, Evaluation
from .budget import BudgetSpec

log = logging.getLogger(__name__)


def run_action(budget: BudgetSpec, crossing: Crossing, result: Evaluation) -> str:
    """Do what the threshold's action asks; returns what was done (for the ActionTaken event)."""
    from .. import metrics
    action = crossing.threshold.action
    metrics.BUDGET_CROSSINGS.labels(budget=budget.key, threshold=crossing.threshold.id, action=action).inc()
    said = deliver(budget, crossing, result)
    if action == "FreezeGrowth":
        return f"{freeze_growth(budget, crossing, result)}; {said}"
    return said


def deliver(budget: BudgetSpec, crossing: Crossing, result: Evaluation) -> str:
    """Hand the crossing to the budget's notification channels. HOOK: the channels (Slack, e-mail, Teams,
    PagerDuty, webhooks) arrive with the insights issue; until then the Event and the metric are the alert."""
    notifications = (budget.schema.notifications or []) if budget.schema else []
    wanted = [n.channel_ref for n in notifications if not n.actions or crossing.threshold.action in n.actions]
    if not wanted:
        return "Event and metric recorded"
    names = ", ".join(f"{c.kind}/{c.name}" for c in wanted)
    return f"Event and metric recorded; not delivered to {names} (notification channels are not available yet)"


def freeze_growth(budget: BudgetSpec, crossing: Crossing, result: Evaluation) -> str:
    """HOOK for issue 10 part 4: propose the ResourceQuota pull request for the scope's namespaces
    (``freeze_growth_finding(budget_name, namespace, hard, reason)`` through the policy's PR machinery)."""
    log.info("budget %s: FreezeGrowth crossed; no ResourceQuota pull request machinery in this build",
             budget.key)
    return "no ResourceQuota pull request opened (FreezeGrowth pull requests are not available in this build)"
