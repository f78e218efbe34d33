"""PagerDuty Events API v2: trigger (and resolve) an alert under a dedup key.

Followed: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
(PagerDuty/developer-docs, docs/events-API-v2/02-Trigger-Events.md): POST
``https://events.pagerduty.com/v2/enqueue`` with ``routing_key`` (the 32-character
integration key), ``event_action`` (``trigger`` | ``acknowledge`` | ``resolve``),
``dedup_key`` (<= 255 characters) and, for a trigger, ``payload`` with
``summary`` (<= 1024 characters), ``source``, ``severity`` (``critical`` |
``error`` | ``warning`` | ``info``) and ``custom_details``; ``links`` of
``href``/``text``. The service answers 202 ``{"status": "success", "dedup_key": ...}``,
400 for an invalid event, 429 when rate limited.
"""
from __future__ import annotations

import hashlib

from finops_operator.notify.config import ChannelConfig
from finops_operator.notify.transport import Answer, post_json
from finops_operator.notify.message import Message
from finops_operator.scrub import bound

MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


def dedup_key(message: Message) -> str:
    key = message.dedup_key
    return key if len(key) <= MAX_DEDUP_KEY else "sha256-" + hashlib.sha256(key.encode()).hexdigest()


def event(message: Message, *, routing_key: str, source: str) -> dict:
    """The Events API v2 body: a trigger, or a resolve when ``message.resolve``."""
    if message.resolve:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(message)}
    return {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": dedup_key(message),
        "payload": {"summary": bound(message.title, MAX_SUMMARY), "source": source,
                    "severity": SEVERITY[message.priority.value], "class": "finops-insight",
                    "custom_details": {"text": message.text, **dict(message.fields),
                                       "insight_ids": list(message.insight_ids)}},
        "links": [{"href": link.url, "text": link.title} for link in message.links],
        "client": "finops-operator",
    }


def deliver(config: ChannelConfig, message: Message) -> Answer:
    body = event(message, routing_key=config.routing_key or "", source=config.source)
    return post_json(config.pagerduty_url, body, where=config.endpoint, policy=config.retry,
                     secrets=config.secrets())
