"""``send``: deliver messages on one channel, one receipt each. Never raises for a delivery problem.

Each channel type is one module with ``deliver(config, message) -> Answer``;
this is the only place that maps a type to its module.
"""
from __future__ import annotations

import logging
from typing import Callable

from finops_operator.notify import mail, pagerduty, slack, teams, webhook
from finops_operator.notify.config import ChannelConfig, ChannelType
from finops_operator.notify.transport import MAX_REASON, Answer
from finops_operator.notify.message import Message, Outcome, Receipt
from finops_operator.scrub import scrub

log = logging.getLogger(__name__)

DELIVER: dict[ChannelType, Callable[[ChannelConfig, Message], Answer]] = {
    ChannelType.SLACK: slack.deliver,
    ChannelType.SLACK_API: slack.deliver,
    ChannelType.TEAMS: teams.deliver,
    ChannelType.PAGERDUTY: pagerduty.deliver,
    ChannelType.WEBHOOK: webhook.deliver,
    ChannelType.EMAIL: mail.deliver,
}


def _receipt(config: ChannelConfig, message: Message, answer: Answer) -> Receipt:
    outcome = Outcome.SENT if answer.ok else Outcome.RATE_LIMITED if answer.rate_limited else Outcome.FAILED
    return Receipt(channel=config.label, dedup_key=message.dedup_key, outcome=outcome, status=answer.status,
                   attempts=answer.attempts, reason=scrub(answer.reason, config.secrets(), limit=MAX_REASON))


def send(config: ChannelConfig, messages: list[Message]) -> list[Receipt]:
    """Deliver ``messages`` in order on ``config``'s channel; one :class:`Receipt` per message.

    A failing message does not stop the next (each has its own retry budget). A bug in a channel
    module becomes a failed receipt naming the exception type only (its text may hold a payload).
    """
    receipts = []
    for message in messages:
        try:
            answer = DELIVER[config.type](config, message)
        except Exception as exc:  # noqa: BLE001 - one bad message never stops the others
            answer = Answer(False, None, "", 1, f"internal error while sending ({type(exc).__name__})")
        receipt = _receipt(config, message, answer)
        log.log(logging.INFO if receipt.ok else logging.WARNING,
                "notify: %s %s on %s (%s) after %d attempt(s)%s", receipt.outcome.value, receipt.dedup_key,
                config.label, config.endpoint, receipt.attempts, f": {receipt.reason}" if receipt.reason else "")
        receipts.append(receipt)
    return receipts
