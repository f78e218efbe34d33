"""Budget objects: the spec model (the source of the CRD's spec schema, see :mod:`.crdgen`),
validation, and what the pure evaluation (:mod:`..budgets`) needs of a spec.

The timer (``handlers.budgets``) evaluates each accepted Budget (``api.budgetrun``); this module
only parses: ``read_budget`` raises a ConfigError naming the field, ``rejected_status`` says so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from ..budgets import BudgetRules, ClusterScope, ThresholdRule
from ..errors import ConfigError
from ..settings_base import Matches, Rule, SettingsModel, TimeZone, cel_quote, validate_spec
from .conditions import condition, merge_conditions
from .specs import SET, LabelValue, NamespaceName

ACTIONS = ("Notify", "Alert", "FreezeGrowth")
Action = Literal["Notify", "Alert", "FreezeGrowth"]
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,11})([.][0-9]{1,2})?$"
QUANTITY_PATTERN = r"^(([0-9]+([.][0-9]*)?)|([.][0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"
RESOURCE_NAME = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK", "INR",
              "CNY", "HKD", "SGD", "KRW", "BRL", "MXN", "ZAR")
SUPPORTED_CURRENCIES = ("USD",)         # costs are allocated in USD; others need exchange rates first
USD_ONLY = ("only USD is supported until other currencies are (costs are allocated in USD and no exchange rate "
            "is applied): set currency: USD and the amount in dollars")
START_DATE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"
FORECAST_METHODS = ("Auto", "Linear", "MovingAverage", "HoltWinters")

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
    teams: list[LabelValue] | None = Field(default=None, max_length=64, json_schema_extra=SET, description=(
        "Only workloads of these teams count (the policy's allocation.teamLabel, else "
        "app.kubernetes.io/part-of)."))
    aws: BudgetAwsScope | None = Field(default=None, description=(
        "AWS costs from Cost Explorer matching all of tags, services and accounts, added to the cluster part. "
        "The cluster part (allocated cost of namespaces, labels and teams) counts when one of those is set or "
        "aws is absent; select costs outside the cluster here (its nodes are already allocated)."))

    def cluster(self) -> ClusterScope | None:
        """The cluster part of the scope, None when the budget covers AWS costs only."""
        if self.aws is not None and not (self.namespaces or self.labels or self.teams):
            return None
        return ClusterScope(frozenset(self.namespaces or ()), tuple(sorted((self.labels or {}).items())),
                            frozenset(self.teams or ()))


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


class BudgetForecast(SettingsModel):
    """How spend to the end of the period is forecast."""

    method: Literal[FORECAST_METHODS] = Field(default="Auto", description=(  # type: ignore[valid-type]
        "Auto picks the method with the smallest rolling back-test error; Linear, MovingAverage or HoltWinters "
        "(weekly seasonality) force one."))


class PolicyRef(SettingsModel):
    """The FinOpsPolicy (same namespace) whose Prometheus, prices and AWS settings the budget is evaluated with."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]


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
        Rule("!has(self.currency) || self.currency == 'USD'", USD_ONLY,
             lambda s: s.currency in SUPPORTED_CURRENCIES, field="currency"),
        Rule("!has(self.thresholds) || !self.thresholds.exists(t, t.action == 'FreezeGrowth') || "
             "(has(self.scope) && has(self.scope.namespaces) && size(self.scope.namespaces) > 0)",
             "a FreezeGrowth threshold needs scope.namespaces (the ResourceQuota it proposes is added per namespace)",
             _freeze_scoped, field="scope"),
    )

    amount: Amount
    currency: Literal[CURRENCIES] = Field(default="USD", description=(  # type: ignore[valid-type]
        "ISO 4217 code of the amount; only USD is supported for now."))
    period: Literal["Monthly", "Quarterly", "Yearly"] = Field(default="Monthly", description=(
        "Budget period; it starts on the first day of the month, quarter (January, April, July, October) or "
        "year, or every 1, 3 or 12 months from startDate, at midnight in timeZone."))
    start_date: Annotated[str, Field(max_length=10, description=(
        "A day a period starts on, YYYY-MM-DD with a day from 01 to 28, e.g. 2025-04-01 for fiscal years from "
        "April. Periods run every 1, 3 or 12 months from it, before and after.")),
        Matches(START_DATE, "startDate must be a date YYYY-MM-DD with a day from 01 to 28 (a period must start "
                "on a day every month has)", cel=True)] | None = None
    time_zone: TimeZone = "UTC"
    scope: BudgetScope = BudgetScope()
    thresholds: Thresholds = [Threshold(percent=80, action="Notify"), Threshold(percent=100, action="Alert")]
    freeze_growth: FreezeGrowth | None = None
    notifications: list[Notification] | None = Field(default=None, max_length=16, description=(
        "Where threshold notifications go."))
    forecast: BudgetForecast = BudgetForecast()
    policy_ref: PolicyRef | None = Field(default=None, description=(
        "The FinOpsPolicy of this namespace to read costs with; needed only when the namespace has several."))


@dataclass(frozen=True)
class BudgetSpec:
    name: str
    namespace: str
    amount: Decimal
    currency: str
    period: str
    thresholds: tuple[tuple[int, str, bool], ...]
    schema: BudgetSpecSchema | None = None
    uid: str = ""
    generation: int = 0

    @property
    def source(self) -> str:
        return f"Budget {self.namespace}/{self.name}"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self) -> BudgetRules:
        """What the pure evaluation needs (:mod:`..budgets`)."""
        spec = self.schema or BudgetSpecSchema(amount=str(self.amount))
        return BudgetRules(float(self.amount), self.period, tuple(ThresholdRule(p, a, f) for p, a, f in self.thresholds),
                           time_zone=spec.time_zone,
                           anchor=date.fromisoformat(spec.start_date) if spec.start_date else None)


def read_budget(body: dict[str, Any]) -> BudgetSpec:
    """Parse and check a Budget with :class:`BudgetSpecSchema` (the CRD's source); ConfigError names the field."""
    meta = body.get("metadata") or {}
    source = f"Budget {meta.get('namespace')}/{meta.get('name')}"
    raw = body.get("spec")
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping, got {type(raw).__name__}", source=source, field="spec")
    spec = validate_spec(BudgetSpecSchema, raw or {}, source=source, prefix="spec")
    return BudgetSpec(meta.get("name") or "?", meta.get("namespace") or "default", Decimal(spec.amount),
                      spec.currency, spec.period, tuple((t.percent, t.action, t.forecasted) for t in spec.thresholds),
                      schema=spec, uid=str(meta.get("uid") or ""), generation=int(meta.get("generation") or 0))


def rejected_status(error: ConfigError, generation: int, previous: dict[str, Any] | None,
                    now: datetime) -> dict[str, Any]:
    message = f"{error.field + ': ' if error.field else ''}{error.message}"
    return {"observedGeneration": generation,
            "conditions": merge_conditions((previous or {}).get("conditions"),
                                           [condition("Ready", False, "InvalidSpec", message, generation=generation)],
                                           now=now)}
