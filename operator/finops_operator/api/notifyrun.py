"""Delivery at the I/O edge: queue items durably, flush what is due through a transport, report the status.

    submit(store, channel, items, now)                       # enqueue (dedup) in the channel's ConfigMap
    flush(store, channel, subscriptions, transport, now)     # recover, plan, then per delivery:
        1. write "sending" (attempt id) to the ConfigMap     -- BEFORE the transport is called
        2. transport.send(messages)                          -- the attempt id is the idempotency key
        3. write the receipt (Sent) or the failure (back-off, Failed receipt)
    channel_status(state, plan, now)                          # status.delivery + Ready

A crash between 1 and 3 leaves the attempt "sending": the next flush (any process) resolves it with
``delivery.engine.recover``: sent again under the same key where the service drops duplicates, else recorded
InDoubt and not sent again. So nothing is sent twice, and nothing is lost without a receipt saying so.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..delivery import engine
from ..delivery.digest import Outgoing, Transport, messages
from ..delivery.model import Attempt, Item, Outcome, QueueState, Subscription
from ..errors import FinOpsError
from ..scrub import scrub
from .conditions import condition, merge_conditions
from .notification import ChannelSpec
from .notifystore import QueueStore

log = logging.getLogger(__name__)
STATUS_RECEIPTS = 10


class DeliveryFailed(FinOpsError):
    """A transport could not deliver (its message names the service and the reason, never a credential)."""


@dataclass(frozen=True, slots=True)
class FlushResult:
    state: QueueState
    plan: engine.Plan
    sent: int
    failed: int


def submit(store: QueueStore, channel: ChannelSpec, items: Iterable[Item], now: datetime) -> QueueState:
    items = [i for i in items if i.channel == channel.name]
    return store.update(channel, lambda state: engine.enqueue(state, items, now)[0])


def flush_channel(api_client: Any, channel: ChannelSpec, subscriptions: list[Subscription], now: datetime, *,
                  transport: Callable[[ChannelSpec, dict[str, str]], Transport] | None = None) -> FlushResult:
    """What a channel's timer does: resolve its Secret, build the transport, flush (errors scrubbed of the
    Secret's values wherever they are recorded or logged)."""
    secrets = credentials(api_client, channel)
    make = transport or NotifyTransport
    return flush(QueueStore(api_client), channel, subscriptions, make(channel, secrets), now,
                 secrets=tuple(secrets.values()))


def flush(store: QueueStore, channel: ChannelSpec, subscriptions: list[Subscription], transport: Transport,
          now: datetime, *, secrets: tuple[str, ...] = ()) -> FlushResult:
    """Deliver what is due now; each delivery is recorded before and after it is sent."""
    from .. import metrics
    resend: list[Attempt] = []

    def recovered(state: QueueState) -> QueueState:
        resend.clear()
        state, again = engine.recover(state, idempotent=transport.idempotent, now=now)
        resend.extend(again)
        return state

    state = store.update(channel, recovered)
    sent = failed = 0
    for attempt in resend:
        state, ok = _deliver(store, channel, transport, attempt, now, secrets, begun=True)
        sent, failed = sent + ok, failed + (not ok)
    plan = engine.due(state, subscriptions, now)
    if channel.schema.suspended:
        return FlushResult(state, plan, 0, 0)
    for attempt in plan.attempts:
        state, ok = _deliver(store, channel, transport, attempt, now, secrets)
        sent, failed = sent + ok, failed + (not ok)
        metrics.count_delivery(channel.key, attempt, Outcome.SENT if ok else Outcome.FAILED)
    return FlushResult(state, engine.due(state, subscriptions, now), sent, failed)


def _deliver(store: QueueStore, channel: ChannelSpec, transport: Transport, attempt: Attempt, now: datetime,
             secrets: tuple[str, ...], *, begun: bool = False) -> tuple[QueueState, bool]:
    if not begun:
        taken: list[bool] = []

        def take(state: QueueState) -> QueueState:
            pending = {i.key for i in state.pending}
            taken[:] = [all(i.key in pending for i in attempt.items)]
            return engine.begin(state, attempt) if taken[0] else state

        state = store.update(channel, take)
        if not taken[0]:                 # another process took (or sent) these items meanwhile
            return state, False
    try:
        transport.send(messages(attempt))
    except Exception as exc:              # a failed delivery is recorded; the loop goes on
        reason = scrub(str(exc), secrets)[:1000]
        log.warning("delivery %s to %s failed: %s", attempt.id, channel.key, reason)
        return store.update(channel, lambda s: engine.fail(s, attempt.id, reason, now)), False
    return store.update(channel, lambda s: engine.complete(s, attempt.id, now)), True


def channel_status(channel: ChannelSpec, state: QueueState, plan: engine.Plan, previous: dict[str, Any] | None,
                   now: datetime, problem: str | None = None) -> dict[str, Any]:
    """status: delivery statistics, the latest receipts, Ready (False with the reason when delivery fails)."""
    held = {o: sum(1 for d in plan.held if d.outcome is o) for o in (Outcome.BATCHED, Outcome.SUPPRESSED,
                                                                     Outcome.RATE_LIMITED)}
    last = state.receipts[-1] if state.receipts else None
    failing = last is not None and last.outcome is Outcome.FAILED
    ready = condition("Ready", problem is None and not failing,
                      "Unresolved" if problem else ("DeliveryFailed" if failing else "Delivering"),
                      problem or (scrub(last.reason) if failing and last else "deliveries succeed"),
                      generation=channel.generation)
    return {
        "observedGeneration": channel.generation,
        "conditions": merge_conditions((previous or {}).get("conditions"), [ready], now=now),
        "delivery": {"sent": state.stats.total(Outcome.SENT), "failed": state.stats.total(Outcome.FAILED),
                     "inDoubt": state.stats.total(Outcome.IN_DOUBT), "pending": len(state.pending),
                     "batched": held[Outcome.BATCHED], "suppressed": held[Outcome.SUPPRESSED],
                     "rateLimited": held[Outcome.RATE_LIMITED],
                     "lastError": scrub(state.last_error)[:1024],
                     **({"lastDelivery": last.at.isoformat()} if last else {}),
                     "receipts": [{"at": r.at.isoformat(), "outcome": r.outcome.value, "subscription": r.subscription,
                                   "items": len(r.item_ids), "reason": scrub(r.reason)[:1024]}
                                  for r in state.receipts[-STATUS_RECEIPTS:]]}}


# --------------------------------------------------------------------------- the transport (part 2's notify/)


class NotifyTransport:
    """The adapter to ``finops_operator.notify`` (part 2): ``send(config, [Message]) -> [Receipt]``.

    HOOK for the lead when notify/ merges: build its ``ChannelConfig`` from the channel spec and the resolved
    Secret values (:func:`credentials`), map :class:`Outgoing` to ``notify.Message`` (title, text, priority,
    links, dedup_key = the attempt id), and raise :class:`DeliveryFailed` for a failed receipt.
    """

    def __init__(self, channel: ChannelSpec, secrets: dict[str, str]) -> None:
        self.channel, self._secrets = channel, secrets
        self.idempotent = channel.schema.type in ("PagerDuty", "Webhook")

    def send(self, outgoing: list[Outgoing]) -> None:
        try:
            from .. import notify  # type: ignore[attr-defined]
        except ImportError:
            raise DeliveryFailed("the notification transports (finops_operator.notify) are not in this build",
                                 source=self.channel.source) from None
        config = notify.channel_config(self.channel.schema, self._secrets)
        receipts = notify.send(config, [notify.Message.from_outgoing(m) for m in outgoing])
        bad = [r for r in receipts if not getattr(r, "ok", True)]
        if bad:
            raise DeliveryFailed(scrub(str(getattr(bad[0], "error", "refused"))), source=self.channel.source)


def credentials(api_client: Any, channel: ChannelSpec) -> dict[str, str]:
    """The channel's Secret values by logical name (url, token, ...), read by name; never logged."""
    from .notification import REQUIRED_KEYS, SECRET_KEYS
    from .policy import SecretRef
    from .wiring import read_secret
    ref = channel.schema.secret_ref
    if ref is None:
        return {}
    out: dict[str, str] = {}
    for logical in SECRET_KEYS[channel.schema.type]:
        key_ref = SecretRef(ref.name, ref.key(logical))
        try:
            out[logical] = read_secret(api_client, channel.namespace, key_ref, where=f"spec.secretRef ({logical})",
                                       source=channel.source)
        except FinOpsError:
            if logical in REQUIRED_KEYS[channel.schema.type]:
                raise
    return out
