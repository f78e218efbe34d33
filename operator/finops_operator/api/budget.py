"""Budget objects: the spec model (the source of the CRD's spec schema, see :mod:`.crdgen`),
validation and the Ready condition.

Spend, forecasts and threshold actions come in a later issue; until then the
operator checks a Budget and says plainly, in its Ready condition, that it is
accepted but not evaluated yet.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from ..errors import ConfigError
from ..settings_base import Matches, Rule, SettingsModel, cel_quote, validate_spec
from .conditions import condition, merge_conditions
from .specs import SET, LabelValue, NamespaceName

NOT_YET = ("spend, forecast and threshold actions are not evaluated yet (they arrive with the cost-reporting "
           "release); the operator only validates this Budget for now")


ACTIONS = ("Notify", "Alert", "FreezeGrowth")
Action = Literal["Notify", "Alert", "FreezeGrowth"]
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,11})([.][0-9]{1,2})?$"
QUANTITY_PATTERN = r"^(([0-9]+([.][0-9]*)?)|([.][0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"
RESOURCE_NAME = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK", "INR",
              "CNY", "HKD", "SGD", "KRW", "BRL", "MXN", "ZAR")
WHOLE_CURRENCIES = ("JPY", "KRW")

Amount = Annotated[str, Field(min_length=1, max_length=16, description=(
    "Limit per period as a positive decimal string with at most two decimals, without currency sign or thousands "
    "separators, e.g. \"5000\" or \"1250.50\".")),
    Matches(AMOUNT_PATTERN, "amount must be a positive decimal such as \"5000\" or \"1250.50\": digits, at most "
            "two decimals, no minus sign, currency symbol or thousands separator", cel=True),
    Rule("!self.matches('^0([.]0{1,2})?$')", "amount must be greater than zero", lambda a: Decimal(a) > 0)]


class BudgetAwsScope(SettingsModel):
    """AWS Cost Explorer filter."""

    tags: dict[str, Annotated[list[Annotated[str, Field(max_length=256)]], Field(min_length=1, max_length=32)]] | None = (
        Field(default=None, max_length=16, description=(
            "Cost allocation tag key to accepted values, e.g. {team: [payments]}.")))
    services: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, max_length=32, json_schema_extra=SET, description=(
            "Cost Explorer SERVICE dimension values, e.g. \"Amazon Elastic Compute Cloud - Compute\"."))
    accounts: list[Annotated[str, Field(max_length=12, pattern=r"^[0-9]{12}$")]] | None = Field(
        default=None, max_length=32, json_schema_extra=SET, description="Linked account IDs (12 digits).")


class BudgetScope(SettingsModel):
    """What the budget covers. Every field narrows it; empty covers the whole cluster (Kubernetes costs) and account (AWS costs)."""  # noqa: E501

    namespaces: list[NamespaceName] | None = Field(default=None, max_length=256, json_schema_extra=SET)
    labels: dict[str, LabelValue] | None = Field(default=None, max_length=16, description=(
        "Only workloads carrying all of these labels count."))
    aws: BudgetAwsScope | None = None


class Threshold(SettingsModel):
    """What happens at which share of the amount."""

    percent: int = Field(ge=1, le=1000, description="Percent of the amount, 1-1000.")
    action: Action = Field(description=(
        "Notify sends to the notification targets; Alert also raises a Warning event and sets the Budget's "
        "Exceeded condition; FreezeGrowth additionally opens a pull request adding a ResourceQuota "
        "(spec.freezeGrowth) to the scoped namespaces."))
    forecasted: bool = Field(default=False, description=(
        "Compare the forecast for the end of the period instead of the spend so far."))


def _sorted(thresholds: list[Threshold]) -> bool | str:
    for i in range(1, len(thresholds)):
        if thresholds[i].percent < thresholds[i - 1].percent:
            return f"[{i}].percent"
    return True


def _unique(thresholds: list[Threshold]) -> bool | str:
    seen: set[tuple[int, bool]] = set()
    for i, t in enumerate(thresholds):
        if (t.percent, t.forecasted) in seen:
            return f"[{i}]"
        seen.add((t.percent, t.forecasted))
    return True


Thresholds = Annotated[list[Threshold], Field(min_length=1, max_length=10, description=(
    "What happens at which share of the amount, sorted by percent. forecasted thresholds compare the end-of-period "
    "forecast, the others the spend so far.")),
    Rule("self.map(t, t.percent).isSorted()", "thresholds must be sorted by percent, smallest first", _sorted),
    Rule("self.all(a, self.exists_one(b, b.percent == a.percent && (has(b.forecasted) && b.forecasted) == "
         "(has(a.forecasted) && a.forecasted)))",
         "thresholds must be unique; each percent may appear once for actual spend and once with forecasted true",
         _unique)]

Quantity = Annotated[str, Field(max_length=32), Matches(QUANTITY_PATTERN, (
    "freezeGrowth.hard values must be Kubernetes quantities such as 500m, 4, 16Gi or 1e3 (no spaces, no negative "
    "values)"), cel=True)]


def _resource_names(hard: dict[str, str]) -> bool | str:
    bad = [k for k in hard if re.fullmatch(RESOURCE_NAME, k) is None]
    return bad[0] if bad else True


class FreezeGrowth(SettingsModel):
    """The ResourceQuota a FreezeGrowth threshold proposes. Absent hard limits freeze requests at their current totals."""  # noqa: E501

    hard: Annotated[dict[str, Quantity], Field(max_length=16, description=(
        "ResourceQuota hard limits, e.g. {requests.cpu: \"20\", requests.memory: 64Gi}.")), Rule(
        f"self.all(k, k.matches({cel_quote(RESOURCE_NAME)}))",
        "freezeGrowth.hard keys must be ResourceQuota resource names such as requests.cpu, limits.memory or pods",
        _resource_names)] | None = None


class ChannelRef(SettingsModel):
    """A notification channel configured for the operator (Slack, e-mail, Teams, PagerDuty, webhook)."""

    kind: Literal["Slack", "Email", "Teams", "PagerDuty", "Webhook"]
    name: NamespaceName


class Notification(SettingsModel):
    """Where threshold notifications go."""

    channel_ref: ChannelRef
    actions: list[Action] | None = Field(default=None, max_length=3, json_schema_extra=SET, description=(
        "Only thresholds with these actions are sent here. Empty means all."))


def _freeze_scoped(spec: "BudgetSpecSchema") -> bool:
    return not any(t.action == "FreezeGrowth" for t in spec.thresholds) or bool(spec.scope.namespaces)


class BudgetSpecSchema(SettingsModel):
    """A spending limit per period with thresholds."""

    rules = (
        Rule("!has(self.currency) || !(self.currency in ['JPY', 'KRW']) || !self.amount.contains('.')",
             "amount must be a whole number for currencies without minor units (JPY, KRW)",
             lambda s: s.currency not in WHOLE_CURRENCIES or "." not in s.amount, field="amount"),
        Rule("!has(self.thresholds) || !self.thresholds.exists(t, t.action == 'FreezeGrowth') || "
             "(has(self.scope) && has(self.scope.namespaces) && size(self.scope.namespaces) > 0)",
             "a FreezeGrowth threshold needs scope.namespaces (the ResourceQuota it proposes is added per namespace)",
             _freeze_scoped, field="scope"),
    )

    amount: Amount
    currency: Literal[CURRENCIES] = Field(default="USD", description="ISO 4217 code of the amount.")  # type: ignore[valid-type]
    period: Literal["Monthly", "Quarterly", "Yearly"] = Field(default="Monthly", description=(
        "Budget period; it starts on the first day of the month, quarter or year (UTC)."))
    scope: BudgetScope = BudgetScope()
    thresholds: Thresholds = [Threshold(percent=80, action="Notify"), Threshold(percent=100, action="Alert")]
    freeze_growth: FreezeGrowth | None = None
    notifications: list[Notification] | None = Field(default=None, max_length=16, description=(
        "Where threshold notifications go."))


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
