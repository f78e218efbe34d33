"""NotificationChannel and NotificationSubscription handlers: validate on create/update/resume; each channel
flushes its queue on a timer (``FINOPS_NOTIFY_INTERVAL_SECONDS``, 30 by default): recover interrupted
deliveries, send what is due (critical at once, digests, the end of quiet hours, rate windows, retries),
write the delivery statistics to status. Subscriptions come from a kopf index (no listing per tick).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from ..api.conditions import condition, merge_conditions
from ..api.events import post_event
from ..api.notification import read_channel, read_subscription
from ..api.notifyrun import channel_status, flush_channel
from ..api.notifystore import QueueStore
from ..errors import ConfigError, FinOpsError
from ..scrub import scrub
from .logs import about
from .startup import CONFIG, plain

CHANNELS = ("finops.dev", "v1alpha1", "notificationchannels")
SUBSCRIPTIONS = ("finops.dev", "v1alpha1", "notificationsubscriptions")
INTERVAL = CONFIG.notify_interval_seconds


def utcnow() -> datetime:
    """Test seam."""
    return datetime.now(UTC)


@kopf.index(*SUBSCRIPTIONS)
def subscriptions_by_namespace(namespace: str, body: kopf.Body, **_: Any) -> dict[str, Any] | None:
    try:
        return {namespace: read_subscription(plain(body))}
    except FinOpsError:
        return None


@kopf.on.resume(*SUBSCRIPTIONS)
@kopf.on.create(*SUBSCRIPTIONS)
@kopf.on.update(*SUBSCRIPTIONS)
def validate_subscription(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
    raw, now = plain(body), utcnow()
    generation = int(raw["metadata"].get("generation") or 0)
    try:
        read_subscription(raw)
        ready = condition("Ready", True, "Accepted", "the subscription is valid", generation=generation)
    except ConfigError as exc:
        ready = condition("Ready", False, "InvalidSpec", str(exc), generation=generation)
    patch.status.update({"observedGeneration": generation,
                         "conditions": merge_conditions(plain(status).get("conditions"), [ready], now=now)})


@kopf.on.resume(*CHANNELS)
@kopf.on.create(*CHANNELS)
@kopf.on.update(*CHANNELS)
def validate_channel(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    raw, now = plain(body), utcnow()
    generation = int(raw["metadata"].get("generation") or 0)
    try:
        read_channel(raw)
    except ConfigError as exc:
        ready = condition("Ready", False, "InvalidSpec", str(exc), generation=generation)
        patch.status.update({"observedGeneration": generation,
                             "conditions": merge_conditions(plain(status).get("conditions"), [ready], now=now)})
        post_event(memo.api_client, raw, type_="Warning", reason="InvalidSpec", message=str(exc), now=now,
                   instance=memo.config.instance)
        raise kopf.PermanentError(f"invalid spec: {exc}") from None


@kopf.timer(*CHANNELS, interval=INTERVAL, initial_delay=min(5.0, INTERVAL))
async def deliver(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, name: str, namespace: str,
                  memo: kopf.Memo, subscriptions_by_namespace: kopf.Index, logger: logging.Logger,
                  **_: Any) -> None:
    raw = plain(body)
    try:
        channel = read_channel(raw)
    except FinOpsError:
        return                                   # reported by validate_channel
    lock: asyncio.Lock = memo.locks.setdefault(("channel", namespace, name), asyncio.Lock())
    if lock.locked():
        return
    subs = [s for s in subscriptions_by_namespace.get(namespace, []) if s.route(name) is not None]
    async with lock:
        with about(raw):
            patch.status.update(await asyncio.to_thread(_flush, channel, subs, plain(status), memo, logger))


def _flush(channel, subs, previous: dict[str, Any], memo: kopf.Memo, logger: logging.Logger) -> dict[str, Any]:
    now = utcnow()
    try:
        result = flush_channel(memo.api_client, channel, subs, now)
    except FinOpsError as exc:                   # a missing Secret, an unreadable queue: Ready=False, says which
        state, _, _ = QueueStore(memo.api_client).load(channel)
        from ..delivery.engine import due
        return channel_status(channel, state, due(state, subs, now), previous, now, problem=scrub(str(exc)))
    if result.sent or result.failed:
        logger.info("channel %s: %d delivered, %d failed, %d pending", channel.key, result.sent, result.failed,
                    len(result.state.pending))
    return channel_status(channel, result.state, result.plan, previous, now)
