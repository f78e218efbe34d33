"""Budget handlers: validate and report Ready (spend and forecasts arrive in a later release)."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from ..api.budget import accepted_status, read_budget, rejected_status
from ..api.events import post_event
from ..errors import ConfigError
from .startup import plain

RESOURCE = ("finops.dev", "v1alpha1", "budgets")


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
def validate_budget(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo,
                    logger: logging.Logger, **_: Any) -> None:
    raw, now = plain(body), datetime.now(UTC)
    generation = int(raw["metadata"].get("generation") or 0)
    try:
        budget = read_budget(raw)
    except ConfigError as exc:
        patch.status.update(rejected_status(exc, generation, plain(status), now))
        post_event(memo.api_client, raw, type_="Warning", reason="InvalidSpec", message=str(exc), now=now,
                   instance=memo.config.instance)
        raise kopf.PermanentError(f"invalid spec: {exc}") from None
    patch.status.update(accepted_status(budget, generation, plain(status), now))
    logger.info("budget accepted: %s %s per %s", budget.amount, budget.currency, budget.period)
