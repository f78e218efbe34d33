"""Notification transports: Slack, Teams, PagerDuty, generic webhook, e-mail.

Public API (for the delivery engine)::

    send(config: ChannelConfig, messages: list[Message]) -> list[Receipt]
    Message.from_insights(insights, digest_title=None) -> Message

I/O at the edge: the engine decides what goes when; this package only carries
it and reports what happened. Secrets (webhook URLs, tokens, passwords, keys)
never reach a log line, an error or a receipt.
"""
from finops_operator.notify.config import ChannelConfig, ChannelType, RetryPolicy
from finops_operator.notify.message import Link, Message, Outcome, Receipt
from finops_operator.notify.send import send

__all__ = ["ChannelConfig", "ChannelType", "Link", "Message", "Outcome", "Receipt", "RetryPolicy", "send"]
