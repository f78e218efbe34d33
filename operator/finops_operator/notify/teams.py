"""Microsoft Teams: a Workflows webhook ("Post to a channel when a webhook request is received") with an Adaptive Card.

Followed: the Workflows webhook takes the Bot Framework message shape
``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <card>}]}``
(https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
and the "Send webhook alerts to a channel" template) and answers 202 Accepted.
The card follows the Adaptive Card 1.4 schema (https://adaptivecards.io/explorer/): TextBlock,
FactSet (``facts`` of ``title``/``value``), ``Action.OpenUrl`` (``title``, ``url``); Teams renders
cards up to 1.5 and messages up to about 28 KB.
"""
from __future__ import annotations

from finops_operator.notify.config import ChannelConfig
from finops_operator.notify.transport import Answer, post_json
from finops_operator.notify.message import Message
from finops_operator.scrub import bound

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
MAX_TEXT = 8000         # keeps a card well under Teams' ~28 KB message limit
_COLOR = {"critical": "Attention", "high": "Warning", "medium": "Accent", "low": "Default"}


def card(message: Message) -> dict:
    body: list[dict] = [
        {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": _COLOR[message.priority.value]},
        {"type": "TextBlock", "text": bound(message.text, MAX_TEXT), "wrap": True},
    ]
    if message.fields:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in message.fields.items()]})
    out = {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION, "body": body,
           "msteams": {"width": "Full"}}
    if message.links:
        out["actions"] = [{"type": "Action.OpenUrl", "title": link.title, "url": link.url} for link in message.links]
    return out


def payload(message: Message) -> dict:
    return {"type": "message",
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card(message)}]}


def deliver(config: ChannelConfig, message: Message) -> Answer:
    return post_json(config.url or "", payload(message), where=config.endpoint, policy=config.retry,
                     secrets=config.secrets())
