"""The delivery decisions, pure: what goes now, what is batched, held by quiet hours or a rate limit, dropped.

    items, decisions = route(insights, subscriptions, now)        # fan out per subscription and channel
    state, decisions = enqueue(state, items, now)                 # dedup by (insight id, channel)
    plan = due(state, subscriptions, now)                         # deliveries to make now, holds, next wake-up
    state = begin(state, attempt)        # record "sending" in the store BEFORE calling the transport
    state = complete(state, attempt.id, now) | fail(state, attempt.id, reason, now)
    state = recover(state, idempotent=..., now=now)               # after a restart: resolve what was in flight

Rules (each written once, here):

* an item below its route's ``minPriority`` is dropped (BelowThreshold);
* CRITICAL goes at once: it bypasses batching, quiet hours and the rate limit (it still counts toward it);
* during quiet hours everything else is held (Suppressed) until they end, then delivered; nothing is dropped;
* items up to ``batch_max_priority`` wait for their batch: it goes as one digest when it holds
  ``batch_size`` items or its oldest item waited ``batch_interval``;
* a subscription makes at most ``rate_per_hour`` deliveries per channel in any 60 minutes (a digest is
  one delivery); the rest is held (RateLimited) until the window frees;
* an (insight id, channel) that is queued, in flight or was sent within ``SENT_WINDOW`` is not queued again.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..guardrails.windows import closing, inside
from ..models.insights import Insight, Priority
from .model import Attempt, Decision, Item, Outcome, QueueState, Receipt, Subscription

SENT_WINDOW = timedelta(days=14)       # dedup memory; an insight id seen again after that is news again
MAX_SENT = 5000
MAX_PENDING = 1000
MAX_RECEIPTS = 50
MAX_FAILURES = 5                       # after that many failed attempts an item is given up (Failed receipt)
RATE_WINDOW = timedelta(hours=1)
RETRY_BASE = timedelta(minutes=1)      # back-off after a failed delivery: 1, 2, 4, 8 minutes


@dataclass(frozen=True, slots=True)
class Plan:
    attempts: tuple[Attempt, ...]
    held: tuple[Decision, ...]
    wake: datetime | None              # the earliest moment something held may become due


def route(insights: Iterable[Insight], subscriptions: Iterable[Subscription], now: datetime,
          ) -> tuple[list[Item], list[Decision]]:
    """One item per (insight, subscription of its persona, channel at or above the route's threshold)."""
    items: list[Item] = []
    dropped: list[Decision] = []
    subscriptions = list(subscriptions)
    for insight in insights:
        for sub in subscriptions:
            if sub.persona is not None and sub.persona != insight.persona:
                continue
            for r in sub.routes:
                if not insight.priority.at_least(r.min_priority):
                    dropped.append(Decision(insight.id, r.channel, sub.name, Outcome.BELOW_THRESHOLD))
                    continue
                items.append(Item(insight.id, r.channel, sub.name, insight.priority, insight.title,
                                  _text(insight), now, persona=insight.persona.value,
                                  links=tuple(e.url for e in insight.evidence if e.url)))
    return items, dropped


def _text(insight: Insight) -> str:
    return f"{insight.description}\n{insight.recommendation}".strip()


def enqueue(state: QueueState, items: Iterable[Item], now: datetime) -> tuple[QueueState, list[Decision]]:
    """Add the channel's new items; an item already queued, in flight or sent is a Duplicate."""
    known = state.known()
    pending, decisions, stats = list(state.pending), [], state.stats
    for item in items:
        if item.channel != state.channel:
            continue
        if item.key in known:
            decisions.append(Decision(item.id, item.channel, item.subscription, Outcome.DUPLICATE))
            continue
        known.add(item.key)
        pending.append(item)
    pending, overflow = _bounded(pending)
    receipts = list(state.receipts)
    for item in overflow:
        stats = stats.add(item.subscription, Outcome.DROPPED)
        receipts.append(Receipt(now, Outcome.DROPPED, state.channel, item.subscription, (item.id,),
                                reason=f"queue full ({MAX_PENDING} items): oldest low-priority item dropped"))
    return replace(state, pending=tuple(pending), stats=stats, receipts=tuple(receipts[-MAX_RECEIPTS:])), decisions


def _bounded(pending: list[Item]) -> tuple[list[Item], list[Item]]:
    if len(pending) <= MAX_PENDING:
        return pending, []
    ranked = sorted(pending, key=lambda i: (i.priority.rank, i.enqueued))
    out = {id(i) for i in ranked[:len(pending) - MAX_PENDING]}
    return [i for i in pending if id(i) not in out], [i for i in pending if id(i) in out]


def due(state: QueueState, subscriptions: Iterable[Subscription], now: datetime) -> Plan:
    """What to deliver now, what stays held (and why, until when), and when to look again."""
    subs = {s.name: s for s in subscriptions}
    attempts: list[Attempt] = []
    held: list[Decision] = []
    wakes: list[datetime] = []
    used = _deliveries_in_window(state, now)
    for name in sorted({i.subscription for i in state.pending}):
        # A subscription that is gone (or a Budget's own notifications): delivered with the defaults, not lost.
        sub = subs.get(name) or Subscription(name, None, ())
        items = [i for i in state.pending if i.subscription == name]
        made, kept, wake = _plan_subscription(state.channel, sub, items, now, used.get(name, []))
        attempts += made
        held += kept
        wakes += wake
    return Plan(tuple(attempts), tuple(held), min(wakes) if wakes else None)


def _deliveries_in_window(state: QueueState, now: datetime) -> dict[str, list[datetime]]:
    out: dict[str, list[datetime]] = {}
    for name, at in state.deliveries:
        if now - at < RATE_WINDOW:
            out.setdefault(name, []).append(at)
    for attempt in state.sending:
        out.setdefault(attempt.subscription, []).append(attempt.started)
    return out


def _plan_subscription(channel: str, sub: Subscription, items: list[Item], now: datetime,
                       used: list[datetime]) -> tuple[list[Attempt], list[Decision], list[datetime]]:
    attempts: list[Attempt] = []
    held: list[Decision] = []
    wakes: list[datetime] = []
    ready = [i for i in items if i.not_before is None or i.not_before <= now]
    wakes += [i.not_before for i in items if i.not_before is not None and i.not_before > now]
    held += [Decision(i.id, channel, sub.name, Outcome.FAILED, i.not_before) for i in items if i not in ready]
    for item in (i for i in ready if i.priority is Priority.CRITICAL):
        attempts.append(_attempt(channel, sub.name, (item,), now))
    rest = [i for i in ready if i.priority is not Priority.CRITICAL]
    quiet_end = closing(now, sub.quiet) if sub.quiet is not None and inside(now, sub.quiet) else None
    if quiet_end is not None:
        held += [Decision(i.id, channel, sub.name, Outcome.SUPPRESSED, quiet_end) for i in rest]
        return attempts, held, wakes + ([quiet_end] if rest else [])
    batched = [i for i in rest if i.priority.rank <= sub.batch_max_priority.rank]
    groups: list[tuple[Item, ...]] = [(i,) for i in rest if i not in batched]
    batch_due = _batch_due(sub, batched)
    if batched and batch_due <= now:
        groups += [tuple(batched[k:k + sub.batch_size]) for k in range(0, len(batched), sub.batch_size)]
    elif batched:
        held += [Decision(i.id, channel, sub.name, Outcome.BATCHED, batch_due) for i in batched]
        wakes.append(batch_due)
    budget = len(used) + len(attempts)
    for group in groups:
        if sub.rate_per_hour and budget >= sub.rate_per_hour:
            frees = _frees(used + [a.started for a in attempts], sub.rate_per_hour, now)
            held += [Decision(i.id, channel, sub.name, Outcome.RATE_LIMITED, frees) for i in group]
            wakes.append(frees)
            continue
        attempts.append(_attempt(channel, sub.name, group, now, digest=len(group) > 1 or group[0] in batched))
        budget += 1
    return attempts, held, wakes


def _batch_due(sub: Subscription, batched: list[Item]) -> datetime:
    """When the batch goes: at once when it is full, else when its oldest item has waited the interval."""
    oldest = min(i.enqueued for i in batched) if batched else datetime.max
    if len(batched) >= sub.batch_size:
        return oldest
    return oldest + sub.batch_interval if batched else oldest


def _frees(times: list[datetime], limit: int, now: datetime) -> datetime:
    """When the window has room again: the moment the oldest delivery that keeps it full leaves it."""
    recent = sorted(t for t in times if now - t < RATE_WINDOW)
    return recent[len(recent) - limit] + RATE_WINDOW


def _attempt(channel: str, subscription: str, items: tuple[Item, ...], now: datetime, *,
             digest: bool = False) -> Attempt:
    """The attempt id is derived from what is sent (stable across a retry of the same plan)."""
    seed = "\n".join([channel, subscription, now.isoformat(), *sorted(i.id for i in items)])
    return Attempt(hashlib.sha256(seed.encode()).hexdigest()[:20], channel, subscription, items, now, digest)


# --------------------------------------------------------------------------- state transitions


def begin(state: QueueState, attempt: Attempt) -> QueueState:
    """The attempt's items leave the queue and are "sending" (to be written BEFORE the transport is called)."""
    keys = {i.key for i in attempt.items}
    return replace(state, pending=tuple(i for i in state.pending if i.key not in keys),
                   sending=state.sending + (attempt,))


def complete(state: QueueState, attempt_id: str, now: datetime, *, outcome: Outcome = Outcome.SENT,
             reason: str = "") -> QueueState:
    """The transport delivered (or, IN_DOUBT, may have): remember the items as sent; a receipt."""
    attempt = _find(state, attempt_id)
    if attempt is None:
        return state
    sent = state.sent + tuple((i.key, now) for i in attempt.items)
    receipt = Receipt(now, outcome, state.channel, attempt.subscription, tuple(i.id for i in attempt.items),
                      attempt.id, reason)
    return _pruned(replace(state, sending=tuple(a for a in state.sending if a.id != attempt_id), sent=sent,
                           deliveries=state.deliveries + ((attempt.subscription, attempt.started),),
                           receipts=state.receipts + (receipt,),
                           stats=state.stats.add(attempt.subscription, outcome, len(attempt.items))), now)


def fail(state: QueueState, attempt_id: str, reason: str, now: datetime) -> QueueState:
    """The transport gave up: items go back to the queue with a back-off, or are given up after MAX_FAILURES."""
    attempt = _find(state, attempt_id)
    if attempt is None:
        return state
    retry = tuple(replace(i, failures=i.failures + 1, not_before=now + RETRY_BASE * 2 ** i.failures)
                  for i in attempt.items if i.failures + 1 < MAX_FAILURES)
    given_up = tuple(i.id for i in attempt.items if i.failures + 1 >= MAX_FAILURES)
    receipt = Receipt(now, Outcome.FAILED, state.channel, attempt.subscription, tuple(i.id for i in attempt.items),
                      attempt.id, reason + ("; given up" if given_up else "; retried later"))
    return _pruned(replace(state, sending=tuple(a for a in state.sending if a.id != attempt_id),
                           pending=state.pending + retry, receipts=state.receipts + (receipt,), last_error=reason,
                           stats=state.stats.add(attempt.subscription, Outcome.FAILED, len(attempt.items))), now)


def recover(state: QueueState, *, idempotent: bool, now: datetime) -> tuple[QueueState, list[Attempt]]:
    """Resolve deliveries a restart interrupted (recorded "sending", no receipt).

    With an idempotent transport (PagerDuty's dedup_key, a webhook's Idempotency-Key) the same attempt is sent
    again: the service drops the copy if the first one arrived. Without one (Slack, Teams, e-mail) we cannot know
    whether it arrived, and sending again could duplicate it: the items are recorded as sent with an InDoubt
    receipt (at most once), visible in the channel's status. Returns the state and the attempts to resend.
    """
    if not state.sending:
        return state, []
    if idempotent:
        return state, list(state.sending)
    for attempt in state.sending:
        state = complete(state, attempt.id, now, outcome=Outcome.IN_DOUBT,
                         reason="the operator restarted while this was being sent and the service has no "
                                "idempotency key: not sent again (it may or may not have arrived)")
    return state, []


def _find(state: QueueState, attempt_id: str) -> Attempt | None:
    return next((a for a in state.sending if a.id == attempt_id), None)


def _pruned(state: QueueState, now: datetime) -> QueueState:
    sent = tuple((k, t) for k, t in state.sent if now - t < SENT_WINDOW)[-MAX_SENT:]
    deliveries = tuple((s, t) for s, t in state.deliveries if now - t < RATE_WINDOW)
    return replace(state, sent=sent, deliveries=deliveries, receipts=state.receipts[-MAX_RECEIPTS:])
