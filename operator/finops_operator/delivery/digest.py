"""What an attempt sends: one message per item, or one digest for a batch; and the transport it goes through.

The transports are part 2's ``finops_operator.notify`` (``send(channel, messages) -> list[Receipt]``). This
engine needs only :class:`Transport`: deliver these :class:`Outgoing` messages or raise. The adapter
(``api/notifyrun.py``) turns an :class:`Outgoing` into ``notify.Message``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..models.insights import Priority
from .model import Attempt, Item

MAX_DIGEST_LINES = 50


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message as the engine hands it to a transport."""

    title: str
    text: str
    priority: Priority
    dedup_key: str                       # the attempt id: the service's idempotency key where it has one
    links: tuple[str, ...] = ()
    item_ids: tuple[str, ...] = ()


class Transport(Protocol):
    """Delivers messages to one channel; raises DeliveryFailed (with a reason free of secrets) when it cannot."""

    idempotent: bool                     # True when the service drops a repeated dedup_key (PagerDuty)

    def send(self, messages: list[Outgoing]) -> None: ...


def messages(attempt: Attempt) -> list[Outgoing]:
    """One message per item, or one digest when the attempt is a batch."""
    if not attempt.digest:
        return [_single(item, attempt.id if len(attempt.items) == 1 else f"{attempt.id}-{n}")
                for n, item in enumerate(attempt.items)]
    return [digest(attempt.items, attempt.id)]


def _single(item: Item, key: str) -> Outgoing:
    return Outgoing(item.title, item.text, item.priority, key, item.links, (item.id,))


def digest(items: tuple[Item, ...], key: str) -> Outgoing:
    """A digest: highest priority first, then oldest first; one line per item; the top priority is the digest's."""
    ordered = sorted(items, key=lambda i: (-i.priority.rank, i.enqueued, i.id))
    top = ordered[0].priority
    lines = [f"[{i.priority.value}] {i.title}" for i in ordered[:MAX_DIGEST_LINES]]
    if len(ordered) > MAX_DIGEST_LINES:
        lines.append(f"... and {len(ordered) - MAX_DIGEST_LINES} more")
    personas = sorted({i.persona for i in items if i.persona})
    who = f" for {', '.join(personas)}" if personas else ""
    links = tuple(dict.fromkeys(link for i in ordered for link in i.links))[:MAX_DIGEST_LINES]
    return Outgoing(f"{len(items)} insight{'s' if len(items) != 1 else ''}{who}", "\n".join(lines), top, key,
                    links, tuple(i.id for i in ordered))
