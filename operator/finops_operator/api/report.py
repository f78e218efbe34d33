"""FinOpsReport: the spec model (the CRD's spec schema, see :mod:`.crdgen`) and its parsing.

A FinOpsReport generates a weekly or monthly report on its cron schedule (in its time zone), keeps the last
``retention`` of them (one compressed ConfigMap each, :mod:`.reportstore`), serves them over HTTP
(:mod:`.reportserve`) and sends the Markdown summary to its NotificationChannels (same namespace).

Scope: the report reads the SavingsOpportunities, Budgets and health histories of its own namespace; one in
the operator's namespace may name other namespaces (like a FinOpsPolicy, a report elsewhere is confined to
its own namespace).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from ..errors import ConfigError
from ..settings_base import Rule, SettingsModel, TimeZone, validate_spec
from .policy import next_run, parse_schedule
from .specs import SET, NamespaceName, Schedule

MAX_RETENTION = 100


class ReportScope(SettingsModel):
    """What the report covers. Empty: its own namespace, every policy's ledger there."""

    namespaces: list[NamespaceName] = Field(default_factory=list, max_length=64, json_schema_extra=SET, description=(
        "Namespaces whose SavingsOpportunities, Budgets and health histories are read; empty: the report's own. "
        "Other namespaces only for a report in the operator's namespace."))
    policies: list[NamespaceName] = Field(default_factory=list, max_length=64, json_schema_extra=SET, description=(
        "Only the ledgers of these FinOpsPolicies (by name); empty: every policy's."))


class ChannelRef(SettingsModel):
    """A NotificationChannel in the report's namespace."""

    name: NamespaceName


class Retention(SettingsModel):
    """How many stored reports are kept (the oldest go first), and for how long."""

    rules = (Rule("!has(self.count) || self.count > 0 || (has(self.days) && self.days > 0)",
                  "retention needs count or days (or both) above 0",
                  lambda r: r.count > 0 or r.days > 0),)

    count: int = Field(default=12, ge=0, le=MAX_RETENTION, description=(
        "Keep at most this many reports (0: no count limit, days decides)."))
    days: int = Field(default=0, ge=0, le=3660, description="Delete reports older than this many days (0: no age "
                      "limit, count decides).")


class FinOpsReportSpecSchema(SettingsModel):
    """A scheduled weekly or monthly FinOps report: stored, served over HTTP and sent to notification channels."""

    period: Literal["Weekly", "Monthly"] = Field(default="Weekly", description=(
        "Weekly: the 7 days before the scheduled time; Monthly: the month before it."))
    schedule: Schedule
    time_zone: TimeZone = "UTC"
    scope: ReportScope = ReportScope()
    persona: Literal["cfo", "engineer", "finance", "business"] = Field(default="cfo", description=(
        "Whose insights lead the report (the personas of NotificationSubscription): cfo, engineer, finance "
        "(analyst) or business (lead)."))
    channels: list[ChannelRef] = Field(default_factory=list, max_length=8, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}, description=(
            "NotificationChannels (same namespace) that receive the report's Markdown summary."))
    retention: Retention = Retention()


@dataclass(frozen=True)
class ReportSpec:
    namespace: str
    name: str
    schema: FinOpsReportSpecSchema
    namespaces: tuple[str, ...]                 # what the report reads (confinement applied)
    uid: str = ""
    generation: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def source(self) -> str:
        return f"FinOpsReport {self.key}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.schema.time_zone)

    def next_slot(self, after: datetime) -> datetime:
        """The first scheduled instant strictly after ``after`` (UTC)."""
        return next_run(self.schema.schedule, self.zone, after)


def read_report(body: dict[str, Any], *, operator_ns: str) -> ReportSpec:
    """The FinOpsReport as a validated :class:`ReportSpec`; ConfigError names the field and the fix."""
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace") or "default", meta.get("name") or "?"
    source = f"FinOpsReport {namespace}/{name}"
    raw = body.get("spec")
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping", source=source, field="spec")
    spec = validate_spec(FinOpsReportSpecSchema, raw, source=source, prefix="spec")
    parse_schedule(spec.schedule, source=source)
    wanted = tuple(spec.scope.namespaces) or (namespace,)
    if namespace != operator_ns and set(wanted) - {namespace}:
        raise ConfigError(f"a report outside the operator's namespace ({operator_ns}) reads only its own namespace "
                          f"({namespace}); remove the others from spec.scope.namespaces or move the report to "
                          f"{operator_ns}", source=source, field="spec.scope.namespaces")
    return ReportSpec(namespace, name, spec, wanted, str(meta.get("uid") or ""), int(meta.get("generation") or 0))
