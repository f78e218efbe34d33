"""A generic webhook: the message as JSON, signed with HMAC-SHA256.

Headers: ``X-Finops-Timestamp`` (Unix seconds) and ``X-Finops-Signature:
sha256=<hex>``, the HMAC-SHA256 (RFC 2104, key = the channel's secret) of
``<timestamp>.<raw body>`` — the scheme Slack and Stripe document for their own
webhooks (https://api.slack.com/authentication/verifying-requests-from-slack):
signing the timestamp with the body lets a receiver refuse replays (we suggest
a 5-minute window). A receiver verifies with :func:`signature` and a
constant-time compare. Each retry is signed afresh.
"""
from __future__ import annotations

import hashlib
import hmac
import time

from finops_operator.notify.config import ChannelConfig
from finops_operator.notify.transport import Answer, post_json
from finops_operator.notify.message import Message

SIGNATURE_HEADER = "X-Finops-Signature"
TIMESTAMP_HEADER = "X-Finops-Timestamp"
SCHEMA = "finops.notify/v1"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def payload(message: Message) -> dict:
    return {"schema": SCHEMA, "id": message.dedup_key, "title": message.title, "text": message.text,
            "priority": message.priority.value, "persona": message.persona.value if message.persona else None,
            "fields": dict(message.fields), "links": [{"title": l.title, "url": l.url} for l in message.links],
            "insightIds": list(message.insight_ids), "resolve": message.resolve}


def deliver(config: ChannelConfig, message: Message) -> Answer:
    secret = config.hmac_secret or ""

    def signed(body: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(secret, stamp, body)}

    return post_json(config.url or "", payload(message), where=config.endpoint, policy=config.retry,
                     secrets=config.secrets(), headers=signed)
