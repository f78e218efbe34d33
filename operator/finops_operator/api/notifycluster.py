"""Insights and budget alerts into the channels' queues, from the cluster's objects (the callers' entry point).

    enqueue_insights(api_client, namespace, insights, now)   # the namespace's subscriptions route them
    budget_items(budget, crossing, result, now)              # a Budget's spec.notifications, no subscription
    anomaly_insights(budget_key, anomalies, now)             # a Budget's new HIGH anomaly episodes (pure)
    enqueue_items(api_client, namespace, items, now)         # into each named channel's ConfigMap queue

Delivery itself happens in each channel's timer (``handlers/notifications.py`` -> :func:`.notifyrun.flush`).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..delivery import engine
from ..delivery.model import Item, Subscription
from ..errors import FinOpsError
from ..models.insights import Category, Evidence, Insight, Persona, Priority
from ..models.spend import Anomaly, Severity
from ..permissions import Rule
from .notification import ChannelSpec, read_channel, read_subscription
from .notifyrun import submit
from .notifystore import QueueStore

GROUP, VERSION = "finops.dev", "v1alpha1"
PERMISSIONS = (   # RBAC for the calls below (see finops_operator.permissions)
    Rule("cluster", "finops.dev", "notificationsubscriptions", ("list",),
         "api/notifycluster.py subscriptions: the namespace's subscriptions route insights"),
    Rule("cluster", "finops.dev", "notificationchannels", ("get",),
         "api/notifycluster.py enqueue_items: the channel an item goes to (its queue ConfigMap is owned by it)"),
)
BUDGET_PRIORITY = {"Notify": Priority.HIGH, "Alert": Priority.CRITICAL, "FreezeGrowth": Priority.CRITICAL}
ANOMALY_PERSONAS = (Persona.ENGINEER, Persona.FINANCE)


def subscriptions(api_client: Any, namespace: str) -> list[Subscription]:
    """The namespace's valid subscriptions (an invalid one is reported in its own status, skipped here)."""
    import kubernetes
    api = kubernetes.client.CustomObjectsApi(api_client)
    listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, "notificationsubscriptions")
    out = []
    for body in listed.get("items", []):
        try:
            out.append(read_subscription(body))
        except FinOpsError:
            continue
    return out


def channel(api_client: Any, namespace: str, name: str) -> ChannelSpec:
    import kubernetes
    api = kubernetes.client.CustomObjectsApi(api_client)
    return read_channel(api.get_namespaced_custom_object(GROUP, VERSION, namespace, "notificationchannels", name))


def enqueue_insights(api_client: Any, namespace: str, insights: Iterable[Insight], now: datetime) -> int:
    """Route insights through the namespace's subscriptions into the channels' queues; returns items queued."""
    items, _ = engine.route(insights, subscriptions(api_client, namespace), now)
    return enqueue_items(api_client, namespace, items, now)


def enqueue_items(api_client: Any, namespace: str, items: list[Item], now: datetime) -> int:
    store, queued = QueueStore(api_client), 0
    for name in sorted({i.channel for i in items}):
        spec = channel(api_client, namespace, name)
        before = len(store.load(spec)[0].pending)
        queued += max(0, len(submit(store, spec, items, now).pending) - before)
    return queued


def budget_items(budget: Any, crossing: Any, result: Any, now: datetime) -> list[Item]:
    """One item per channel of the Budget's spec.notifications that wants this threshold's action.

    The id names budget, period and threshold: a crossing is queued once per period whatever happens."""
    action = crossing.threshold.action
    refs = [n.channel_ref for n in ((budget.schema.notifications or []) if budget.schema else [])
            if not n.actions or action in n.actions]
    title = f"Budget {budget.key}: {crossing.threshold.describe()} crossed"
    text = (f"{'Forecast' if crossing.threshold.forecasted else 'Spend'} {crossing.value:.2f} {budget.currency} >= "
            f"{crossing.limit:.2f} {budget.currency} in period {result.period.key}; action {action}.")
    ident = f"budget:{budget.key}:{result.period.key}:{crossing.threshold.id}"
    return [Item(ident, ref.name, f"budget:{budget.key}", BUDGET_PRIORITY.get(action, Priority.HIGH), title, text,
                 now, persona="finance") for ref in refs]


def anomaly_insights(budget_key: str, anomalies: Iterable[Anomaly], now: datetime) -> list[Insight]:
    """A critical insight per persona (engineer, finance) for each HIGH-severity episode; lower ones are the
    AnomalyFound Event only. The id names budget and episode start, the same for both personas: a channel
    both subscribe to gets it once, and an episode is queued once whatever happens (pure)."""
    from ..budgets.evaluate import anomaly_message
    from .budgetrun import ACK_ANNOTATION
    out = []
    for anomaly in anomalies:
        if anomaly.severity is not Severity.HIGH:
            continue
        ident = f"anomaly:{budget_key}:{anomaly.start.isoformat()}"
        cause = f" The largest mover is {anomaly.driver}." if anomaly.driver else ""
        for persona in ANOMALY_PERSONAS:
            out.append(Insight(
                ident, persona, f"Budget {budget_key}: {anomaly.kind.value} in spend since {anomaly.start.isoformat()}",
                f"{anomaly_message(anomaly)}.{cause}", Priority.CRITICAL, Category.ANOMALY,
                recommendation=(f"Find what changed around {anomaly.start.isoformat()} (deploys, scaling, new "
                                f"workloads); if expected, list the day in the Budget's annotation "
                                f"{ACK_ANNOTATION}."),
                generator="budget-anomaly", created=now,
                metadata={"budget": budget_key, "start": anomaly.start.isoformat(), "end": anomaly.end.isoformat(),
                          "expected": anomaly.expected, "actual": anomaly.actual},
                evidence=(Evidence("Budget", budget_key),)))
    return out


def channel_report(api_client: Any, namespace: str | None) -> list[dict[str, Any]]:
    """Each channel (one namespace, or all with None) with its status and per-subscription counts from its
    queue: what ``finops notifications`` shows. Never a credential (status and queue hold none)."""
    import kubernetes
    api = kubernetes.client.CustomObjectsApi(api_client)
    listed = (api.list_namespaced_custom_object(GROUP, VERSION, namespace, "notificationchannels") if namespace
              else api.list_cluster_custom_object(GROUP, VERSION, "notificationchannels"))
    store, rows = QueueStore(api_client), []
    for body in listed.get("items", []):
        meta, status = body["metadata"], body.get("status") or {}
        ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), {})
        row: dict[str, Any] = {"namespace": meta["namespace"], "name": meta["name"],
                               "type": (body.get("spec") or {}).get("type"), "ready": ready.get("status", "Unknown"),
                               "reason": ready.get("message", ""), "delivery": status.get("delivery", {}),
                               "bySubscription": {}}
        try:
            state = store.load(read_channel(body))[0]
        except FinOpsError as exc:
            row["reason"] = str(exc)
        else:
            for sub, outcome, count in state.stats.counts:
                row["bySubscription"].setdefault(sub, {})[outcome] = count
        rows.append(row)
    return rows
