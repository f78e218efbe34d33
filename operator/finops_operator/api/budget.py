"""Budget objects: validation and the Ready condition.

Spend, forecasts and threshold actions come in a later issue; until then the
operator checks a Budget and says plainly, in its Ready condition, that it is
accepted but not evaluated yet.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..errors import ConfigError
from ..settings_base import validate_spec
from .conditions import condition, merge_conditions
from .specs import BudgetSpecSchema

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
    """Parse and check a Budget with :class:`.specs.BudgetSpecSchema` (the CRD's source); ConfigError names the field."""
    meta = body.get("metadata") or {}
    source = f"Budget {meta.get('namespace')}/{meta.get('name')}"
    raw = body.get("spec")
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping, got {type(raw).__name__}", source=source, field="spec")
    spec = validate_spec(BudgetSpecSchema, raw or {}, source=source, prefix="spec")
    return BudgetSpec(meta.get("name") or "?", meta.get("namespace") or "default", Decimal(spec.amount),
                      spec.currency, spec.period, tuple((t.percent, t.action, t.forecasted) for t in spec.thresholds))


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
