"""Slack: an incoming webhook, or ``chat.postMessage`` with a bot token; both carry Block Kit.

Followed:

* Incoming webhooks (https://api.slack.com/messaging/webhooks): POST JSON
  ``{"text", "blocks"}`` to the webhook URL; 200 ``ok`` on success, 4xx with a
  plain-text error (``invalid_payload``, ``no_text``, ``invalid_blocks``) otherwise.
* ``chat.postMessage`` (https://api.slack.com/methods/chat.postMessage): POST
  JSON with ``Authorization: Bearer <token>``; the answer is HTTP 200 with
  ``{"ok": false, "error": "..."}`` on failure; 429 + ``Retry-After`` when rate limited
  (https://docs.slack.dev/apis/web-api/rate-limits).
* Block Kit limits (https://api.slack.com/reference/block-kit/blocks): at most
  50 blocks; header plain_text <= 150 chars; section text <= 3000, fields
  <= 10 of <= 2000; context <= 10 elements; actions <= 25 elements; button text
  <= 75, url <= 3000. ``text`` is the notification fallback (<= 40,000 chars).
  mrkdwn needs ``&``, ``<`` and ``>`` escaped (https://api.slack.com/reference/surfaces/formatting#escaping).
"""
from __future__ import annotations

import json

from finops_operator.notify.config import ChannelConfig, ChannelType
from finops_operator.notify.transport import Answer, post_json
from finops_operator.notify.message import Message
from finops_operator.scrub import bound

MAX_TEXT = 40_000
MAX_HEADER = 150
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
MAX_BUTTONS = 25


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str, limit: int) -> str:
    """``text`` escaped for mrkdwn and cut to ``limit`` characters without splitting an entity (``&am...``)."""
    out = escape(text)
    if len(out) <= limit:
        return out
    head = out[:limit - 3]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + "..."


def blocks(message: Message) -> list[dict]:
    """The message as Block Kit: header, section (mrkdwn), fields, context, actions (link buttons)."""
    out: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": bound(message.title, MAX_HEADER) or "-"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(message.text, MAX_SECTION) or "-"}},
    ]
    fields = [{"type": "mrkdwn", "text": f"*{mrkdwn(k, 200)}*\n{mrkdwn(v, MAX_FIELD - 210)}"}
              for k, v in list(message.fields.items())[:MAX_FIELDS]]
    if fields:
        out.append({"type": "section", "fields": fields})
    context = f"priority *{message.priority.value}*" + (f" · for {message.persona.value}" if message.persona else "")
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    buttons = [{"type": "button", "action_id": f"link-{n}",
                "text": {"type": "plain_text", "text": bound(link.title, MAX_BUTTON_TEXT) or "open"},
                "url": link.url} for n, link in enumerate(message.links[:MAX_BUTTONS]) if len(link.url) <= MAX_URL]
    if buttons:
        out.append({"type": "actions", "elements": buttons})
    return out


def payload(message: Message) -> dict:
    """``text`` (the notification fallback) and ``blocks``."""
    return {"text": mrkdwn(f"[{message.priority.value}] {message.title}: {message.text}", MAX_TEXT),
            "blocks": blocks(message)}


def _api_refusal(status: int, body: str) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return "the answer is not JSON"
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        return str(answer.get("error", "ok is not true")) if isinstance(answer, dict) else "unexpected answer"
    return None


def deliver(config: ChannelConfig, message: Message) -> Answer:
    if config.type is ChannelType.SLACK_API:
        body = {"channel": config.channel, **payload(message)}
        return post_json(config.slack_api_url, body, where=config.endpoint, policy=config.retry,
                         secrets=config.secrets(), headers=lambda _: {"Authorization": f"Bearer {config.token}"},
                         accept=_api_refusal)
    return post_json(config.url or "", payload(message), where=config.endpoint, policy=config.retry,
                     secrets=config.secrets())
