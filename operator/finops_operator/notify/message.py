"""What a channel carries (:class:`Message`) and what a delivery left behind (:class:`Receipt`).

Pure: no I/O. A message is channel-neutral; each channel module renders it in
its service's documented format (Block Kit, Adaptive Card, PagerDuty event,
MIME mail, signed JSON).

    >>> from finops_operator.models.insights import Category, Insight, Persona, Priority
    >>> i = Insight(id="idle-web", persona=Persona.ENGINEER, title="web is idle", description="0.2% CPU used",
    ...             priority=Priority.HIGH, category=Category.EFFICIENCY, impact=120.0)
    >>> Message.from_insights([i]).fields["Impact"]
    '$120.00/month'
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum

from finops_operator.errors import ConfigError
from finops_operator.models.insights import Insight, Persona, Priority
from finops_operator.money import usd

MAX_DIGEST_LINES = 20       # a digest lists this many insights, then "... and N more"
MAX_LINKS = 5               # links (buttons) per message


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Message:
    """One notification, channel-neutral. ``dedup_key`` is stable for the same content (PagerDuty's
    ``dedup_key``, the webhook's ``id``, the mail's ``Message-ID`` seed)."""

    title: str
    text: str
    priority: Priority
    dedup_key: str
    fields: Mapping[str, str] = field(default_factory=dict)     # label -> value, in display order
    links: tuple[Link, ...] = ()
    persona: Persona | None = None
    insight_ids: tuple[str, ...] = ()
    resolve: bool = False       # PagerDuty: close the alert opened under ``dedup_key`` (others send it as text)

    @classmethod
    def from_insights(cls, insights: Sequence[Insight], digest_title: str | None = None) -> "Message":
        """One insight -> one message; several (or a ``digest_title``) -> one digest, ranked by priority
        then impact, its priority the highest among them, its dedup key a hash of the insight ids."""
        if not insights:
            raise ConfigError("no insights to put in a message; pass at least one", field="insights")
        if len(insights) == 1 and digest_title is None:
            return _single(insights[0])
        return _digest(list(insights), digest_title)


def _impact(value: float | None) -> str | None:
    return None if value is None else f"{usd(value)}/month"


def _links(insights: Sequence[Insight]) -> tuple[Link, ...]:
    seen: dict[str, Link] = {}
    for insight in insights:
        for ev in insight.evidence:
            if ev.url and ev.url not in seen:
                seen[ev.url] = Link(f"{ev.kind} {ev.name}", ev.url)
    return tuple(seen.values())[:MAX_LINKS]


def _single(insight: Insight) -> Message:
    text = insight.description
    if insight.recommendation:
        text += f"\n\nRecommendation: {insight.recommendation}"
    fields = {"Priority": insight.priority.value, "Category": insight.category.value,
              "Persona": insight.persona.value}
    if (impact := _impact(insight.impact)) is not None:
        fields["Impact"] = impact
    fields["Confidence"] = f"{round(insight.confidence * 100)}%"
    if insight.team:
        fields["Team"] = insight.team
    return Message(title=insight.title, text=text, priority=insight.priority, dedup_key=insight.id,
                   fields=fields, links=_links([insight]), persona=insight.persona, insight_ids=(insight.id,))


def _digest(insights: list[Insight], title: str | None) -> Message:
    ranked = sorted(insights, key=lambda i: (-i.priority.rank, -(i.impact or 0.0), i.id))
    lines = []
    for insight in ranked[:MAX_DIGEST_LINES]:
        impact = _impact(insight.impact)
        lines.append(f"- [{insight.priority.value}] {insight.title}" + (f" ({impact})" if impact else ""))
    if len(ranked) > MAX_DIGEST_LINES:
        lines.append(f"... and {len(ranked) - MAX_DIGEST_LINES} more")
    counts = {p: sum(1 for i in insights if i.priority is p) for p in Priority}
    fields = {"Insights": str(len(insights)),
              "By priority": ", ".join(f"{n} {p.value}" for p, n in sorted(counts.items(), key=lambda kv: -kv[0].rank)
                                       if n)}
    impacts = [i.impact for i in insights if i.impact is not None]
    if impacts:
        fields["Impact"] = _impact(sum(impacts)) or ""
    personas = {i.persona for i in insights}
    ids = tuple(i.id for i in ranked)
    key = "digest-" + hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:24]
    return Message(title=title or f"{len(insights)} FinOps insights", text="\n".join(lines),
                   priority=ranked[0].priority, dedup_key=key, fields=fields, links=_links(ranked),
                   persona=personas.pop() if len(personas) == 1 else None, insight_ids=ids)


class Outcome(str, Enum):
    SENT = "sent"
    FAILED = "failed"
    RATE_LIMITED = "rate-limited-by-service"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What happened to one message on one channel. ``reason`` is scrubbed and bounded; never a secret."""

    channel: str
    dedup_key: str
    outcome: Outcome
    status: int | None = None       # the last HTTP status (or SMTP reply code); None when no answer came
    attempts: int = 0
    reason: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SENT

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (a durable receipt store, a CR status)."""
        return {"channel": self.channel, "dedupKey": self.dedup_key, "outcome": self.outcome.value,
                "status": self.status, "attempts": self.attempts, "reason": self.reason, "at": self.at.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "Receipt":
        status = data.get("status")
        return cls(channel=str(data["channel"]), dedup_key=str(data["dedupKey"]), outcome=Outcome(data["outcome"]),
                   status=int(status) if isinstance(status, int) else None, attempts=int(data.get("attempts") or 0),
                   reason=str(data.get("reason") or ""), at=datetime.fromisoformat(str(data["at"])))
