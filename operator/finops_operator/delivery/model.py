"""The delivery engine's typed data: subscriptions, queued items, attempts, receipts and a channel's queue.

Everything is immutable; the engine returns new states. Times are aware datetimes (UTC in the store).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from ..models.insights import Persona, Priority
from ..settings import ChangeWindow


class Outcome(str, Enum):
    """What happened to one item on one channel (a receipt's and a decision's verdict)."""

    SENT = "Sent"                          # delivered now (alone or in a digest)
    BATCHED = "Batched"                    # waits for its batch (size or interval)
    SUPPRESSED = "Suppressed"              # quiet hours: held until they end, not dropped
    RATE_LIMITED = "RateLimited"           # the subscription's hourly limit is reached: held
    BELOW_THRESHOLD = "BelowThreshold"     # under the route's minPriority: dropped
    DUPLICATE = "Duplicate"                # this insight was already queued or sent on this channel
    FAILED = "Failed"                      # the transport refused or could not reach the service
    IN_DOUBT = "InDoubt"                   # a restart interrupted the send and the service has no idempotency key
    DROPPED = "Dropped"                    # the queue was full: the oldest low-priority item made room


@dataclass(frozen=True, slots=True)
class Route:
    """One channel of a subscription and the least priority that goes to it."""

    channel: str
    min_priority: Priority = Priority.LOW


@dataclass(frozen=True, slots=True)
class Subscription:
    """Who gets which insights where, and how (one NotificationSubscription)."""

    name: str                                   # namespace/name
    persona: Persona | None                     # None: every persona (e.g. a Budget's own notifications)
    routes: tuple[Route, ...]
    recipients: tuple[str, ...] = ()
    batch_size: int = 10                        # a batch goes when it holds this many items ...
    batch_interval: timedelta = timedelta(hours=1)   # ... or when its oldest item waited this long
    batch_max_priority: Priority = Priority.MEDIUM   # items up to this priority are batched; above go at once
    rate_per_hour: int = 0                      # deliveries (a digest counts once) per hour and channel; 0 = none
    quiet: ChangeWindow | None = None           # quiet hours; critical bypasses them

    def route(self, channel: str) -> Route | None:
        return next((r for r in self.routes if r.channel == channel), None)


@dataclass(frozen=True, slots=True)
class Item:
    """One insight (or budget message) waiting for one channel on behalf of one subscription."""

    id: str                                     # the insight id: (id, channel) is never sent twice
    channel: str
    subscription: str
    priority: Priority
    title: str
    text: str
    enqueued: datetime
    persona: str = ""
    links: tuple[str, ...] = ()
    failures: int = 0                           # failed attempts so far
    not_before: datetime | None = None          # retry back-off after a failure

    @property
    def key(self) -> str:
        return f"{self.channel}|{self.id}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """A delivery recorded as "sending" (in the store) BEFORE the transport is called."""

    id: str                                     # attempt id; also the transport's idempotency key
    channel: str
    subscription: str
    items: tuple[Item, ...]
    started: datetime
    digest: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """What happened to a delivery (bounded ring in the store; shown in the channel's status)."""

    at: datetime
    outcome: Outcome
    channel: str
    subscription: str
    item_ids: tuple[str, ...]
    attempt: str = ""
    reason: str = ""                            # never a secret: transports scrub their errors


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts per outcome and subscription, cumulative for the channel (status and metrics)."""

    counts: tuple[tuple[str, str, int], ...] = ()    # (subscription, outcome, count), sorted

    def add(self, subscription: str, outcome: Outcome, n: int = 1) -> "Stats":
        table = {(s, o): c for s, o, c in self.counts}
        table[(subscription, outcome.value)] = table.get((subscription, outcome.value), 0) + n
        return Stats(tuple(sorted((s, o, c) for (s, o), c in table.items())))

    def total(self, outcome: Outcome) -> int:
        return sum(c for _, o, c in self.counts if o == outcome.value)


@dataclass(frozen=True, slots=True)
class QueueState:
    """One channel's durable state (a ConfigMap): pending items, deliveries in flight, what was sent, receipts."""

    channel: str
    pending: tuple[Item, ...] = ()
    sending: tuple[Attempt, ...] = ()
    sent: tuple[tuple[str, datetime], ...] = ()      # (item key, when) inside the dedup window
    deliveries: tuple[tuple[str, datetime], ...] = ()  # (subscription, when) inside the last hour: rate limits
    receipts: tuple[Receipt, ...] = ()
    stats: Stats = field(default_factory=Stats)
    last_error: str = ""

    def known(self) -> set[str]:
        """Item keys already queued, in flight or sent (dedup)."""
        keys = {k for k, _ in self.sent} | {i.key for i in self.pending}
        return keys | {i.key for a in self.sending for i in a.items}


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for one item at one moment (for logs, tests and the CLI)."""

    item_id: str
    channel: str
    subscription: str
    outcome: Outcome
    until: datetime | None = None               # held until (quiet hours end, rate window frees, batch due)
