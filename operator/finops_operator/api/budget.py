"""Budget objects: validation and the Ready condition.

Spend, forecasts and threshold actions come in a later issue; until then the
operator checks a Budget and says plainly, in its Ready condition, that it is
accepted but not evaluated yet.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..errors import ConfigError
from .conditions import condition, merge_conditions

_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,11})([.][0-9]{1,2})?$")
ACTIONS = ("Notify", "Alert", "FreezeGrowth")
NOT_YET = ("spend, forecast and threshold actions are not evaluated yet (they arrive with the cost-reporting "
           "release); the operator only validates this Budget for now")


@dataclass(frozen=True)
class BudgetSpec:
    name: str
    namespace: str
    amount: Decimal
    currency: str
    period: str
    thresholds: tuple[tuple[int, str, bool], ...]


def read_budget(body: dict[str, Any]) -> BudgetSpec:
    """Parse and check a Budget; ConfigError names the field and the fix."""
    meta = body.get("metadata") or {}
    source = f"Budget {meta.get('namespace')}/{meta.get('name')}"
    spec = body.get("spec") or {}
    amount = str(spec.get("amount", ""))
    if not _AMOUNT.match(amount) or Decimal(amount) <= 0:
        raise ConfigError(f"{amount!r} is not a positive amount; write e.g. \"5000\" or \"1250.50\"", source=source,
                          field="spec.amount")
    thresholds = []
    last = 0
    for i, item in enumerate(spec.get("thresholds") or [{"percent": 80, "action": "Notify"},
                                                          {"percent": 100, "action": "Alert"}]):
        percent, action = item.get("percent"), item.get("action")
        if not isinstance(percent, int) or not 1 <= percent <= 1000:
            raise ConfigError(f"percent must be an integer from 1 to 1000, got {percent!r}", source=source,
                              field=f"spec.thresholds[{i}].percent")
        if action not in ACTIONS:
            raise ConfigError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}", source=source,
                              field=f"spec.thresholds[{i}].action")
        if percent < last:
            raise ConfigError("thresholds must be sorted by percent, smallest first", source=source,
                              field=f"spec.thresholds[{i}].percent")
        last = percent
        thresholds.append((percent, action, bool(item.get("forecasted", False))))
    return BudgetSpec(meta.get("name") or "?", meta.get("namespace") or "default", Decimal(amount),
                      str(spec.get("currency") or "USD"), str(spec.get("period") or "Monthly"), tuple(thresholds))


def accepted_status(budget: BudgetSpec, generation: int, previous: dict[str, Any] | None,
                    now: datetime) -> dict[str, Any]:
    message = (f"accepted: {budget.amount} {budget.currency} per {budget.period.lower()} period, "
               f"{len(budget.thresholds)} thresholds; {NOT_YET}")
    return {"observedGeneration": generation,
            "conditions": merge_conditions((previous or {}).get("conditions"),
                                           [condition("Ready", True, "Accepted", message, generation=generation)],
                                           now=now)}


def rejected_status(error: ConfigError, generation: int, previous: dict[str, Any] | None,
                    now: datetime) -> dict[str, Any]:
    message = f"{error.field + ': ' if error.field else ''}{error.message}"
    return {"observedGeneration": generation,
            "conditions": merge_conditions((previous or {}).get("conditions"),
                                           [condition("Ready", False, "InvalidSpec", message, generation=generation)],
                                           now=now)}
