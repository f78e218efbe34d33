"""Policy settings: the pure-Python mirror of a FinOpsPolicy spec.

The same models validate a FinOpsPolicy custom resource's ``spec`` (camelCase
keys, via aliases), a CLI ``--policy`` YAML file, and the embedded demo
defaults. Field bounds and descriptions are the single source for validation
and help text.
"""
from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, create_model

from .allocation.settings import AllocationSettings
from .health.settings import HealthSettings
from .detectors import REGISTRY
from .errors import ConfigError
from .settings_base import LimitPolicy, Rule, SettingsModel, TimeWindow, TimeZone, Weekdays, validate_spec

__all__ = ["AllocationSettings", "ChangeWindow", "DetectorSettings", "GitOpsSettings", "GuardrailSettings", "LimitPolicy", "MAX_HISTORY_WINDOW", "Mode",
           "PolicySettings", "SharedBaseEdits", "TimeWindow", "load_policy", "settings_from_document"]

MAX_HISTORY_WINDOW = timedelta(days=90)     # longest usage history a run reads (bounds its PromQL requests)


_Model = SettingsModel


def _detector_settings() -> type[SettingsModel]:
    """``spec.detectors``: one block per registered finding type, from its detector's ``settings_model``."""
    fields: dict[str, Any] = {}
    for cls in REGISTRY.values():
        fields[cls.settings_key] = (cls.settings_model, cls.settings_model())
    model = create_model("DetectorSettings", __base__=SettingsModel, **fields)
    model.__doc__ = "Detector settings: one block per finding type, declared by its detector module."
    return model


DetectorSettings = _detector_settings()


class ChangeWindow(_Model):
    """A weekly window in which pull requests may be opened."""

    rules = (Rule("!has(self.end) || !has(self.start) || self.end != self.start",
                  "changeWindows: end must differ from start (a window from 22:00 to 06:00 crosses midnight; "
                  "00:00 to 24:00 is the whole day)", lambda w: w.end != w.start, field="end"),)

    days: Weekdays = [0, 1, 2, 3, 4]
    start: str = Field(default="09:00", max_length=5, pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                       description="Local start time HH:MM.")
    end: str = Field(default="17:00", max_length=5, pattern=r"^([01]\d|2[0-4]):[0-5]\d$",
                     description="Local end time HH:MM (24:00 = end of day; earlier than start crosses midnight).")
    time_zone: TimeZone = "UTC"


Dollars = Annotated[int, Field(ge=0, le=10_000_000)]


class GuardrailSettings(_Model):
    """Limits on what may be proposed. Each finding gets a decision (allow, require-approval, deny) with reasons."""

    rules = (
        Rule("!has(self.approvalAboveDollars) || !has(self.maxSingleChangeDollars) || "
             "self.approvalAboveDollars <= self.maxSingleChangeDollars",
             "guardrails.approvalAboveDollars must not exceed guardrails.maxSingleChangeDollars (changes above "
             "maxSingleChangeDollars are denied, so a higher approval threshold would never apply)",
             lambda g: g.approval_above_dollars <= g.max_single_change_dollars, field="approvalAboveDollars"),
        Rule("!has(self.maxNamespacesPerPr) || !has(self.maxWorkloadsPerPr) || "
             "self.maxNamespacesPerPr <= self.maxWorkloadsPerPr",
             "guardrails.maxNamespacesPerPr must not exceed guardrails.maxWorkloadsPerPr (every namespace in a "
             "pull request holds at least one workload)",
             lambda g: g.max_namespaces_per_pr <= g.max_workloads_per_pr, field="maxNamespacesPerPr"),
    )

    max_changes_per_day: int = Field(default=20, ge=0, le=10000, description=(
        "Findings proposed per day across all pull requests; 0 proposes nothing."))
    max_single_change_dollars: Dollars = Field(default=500, description=(
        "A single change worth more than this (whole USD per month) is denied."))
    max_single_change_percent: int = Field(default=75, ge=1, le=100, description=(
        "Largest cut, in percent of the current value."))
    approval_above_dollars: Dollars = Field(default=200, description=(
        "Findings worth more (whole USD per month) need approval."))
    protected_labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default={"tier": "production", "critical": "true"}, max_length=32, description=(
            "Workloads (or nodes/volumes) carrying any of these label/tag values get protectedAction."))
    protected_action: Literal["Deny", "RequireApproval"] = Field(default="RequireApproval", description=(
        "What happens to findings on protected targets."))
    change_windows: list[ChangeWindow] = Field(default=[], max_length=14, description=(
        "When pull requests may be opened. Empty: any time."))
    min_confidence_percent: int = Field(default=60, ge=0, le=100, description=(
        "Findings with lower confidence are denied."))
    max_risk_percent: int = Field(default=60, ge=0, le=100, description=(
        "Findings with higher risk are denied, except safety raises that only raise values (an OOM or "
        "throttling fix runs less risk than the current values)."))
    max_workloads_per_pr: int = Field(default=10, ge=1, le=500, description=(
        "Blast radius - workloads changed by one pull request."))
    max_namespaces_per_pr: int = Field(default=1, ge=1, le=100, description=(
        "Blast radius - namespaces touched by one pull request."))
    max_open_prs: int = Field(default=5, ge=0, le=100, description="Pull requests open at once; 0 opens none.")


class SharedBaseEdits(str, Enum):
    REFUSE = "Refuse"      # a value set in a base other overlays share is changed by a patch in this overlay
    ALLOW = "Allow"        # edit the shared base itself; the pull request lists the other overlays that change


class GitOpsSettings(_Model):
    shared_base_edits: SharedBaseEdits = Field(
        default=SharedBaseEdits.REFUSE,
        description="Refuse: change values set in a shared Kustomize base or component through a patch in this "
                    "cluster's overlay; Allow: edit the shared file, and list the other overlays that change")

    @property
    def allow_shared(self) -> bool:
        return self.shared_base_edits == SharedBaseEdits.ALLOW


class Mode(str, Enum):
    DRY_RUN = "DryRun"                    # record findings, change nothing
    PULL_REQUEST = "PullRequest"          # open PRs for allowed findings
    REQUIRE_APPROVAL = "RequireApproval"  # every finding needs approval first


class PolicySettings(_Model):
    """The settings part of a FinOpsPolicy spec (what a CLI --policy file holds too)."""

    mode: Mode = Field(default=Mode.PULL_REQUEST, description=(
        "DryRun records findings and changes nothing; PullRequest opens pull requests for findings the "
        "guardrails allow; RequireApproval opens them only after a person approves each SavingsOpportunity "
        "(annotation finops.dev/approved: \"true\")."))
    detectors: DetectorSettings = DetectorSettings()  # type: ignore[valid-type]
    guardrails: GuardrailSettings = GuardrailSettings()
    group_by: Literal["namespace", "type", "team"] = Field(default="namespace", description=(
        "How allowed findings are grouped into pull requests."))
    gitops: GitOpsSettings = GitOpsSettings()
    allocation: AllocationSettings = AllocationSettings()
    health: HealthSettings = HealthSettings()


def load_policy(data: dict[str, Any] | None, *, source: str = "policy") -> PolicySettings:
    """Validate settings; errors name the field and what to write instead."""
    return validate_spec(PolicySettings, data or {}, source=source)


SETTINGS_KEYS = ("mode", "detectors", "guardrails", "groupBy", "group_by", "gitops", "allocation", "health")
OPERATOR_KEYS = ("scope", "schedule", "timeZone", "dataSources", "pricing", "git")   # read by api/policy.py
OBJECT_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")


def _no_unknown_keys(data: dict[str, Any], known: tuple[str, ...], source: str, prefix: str) -> None:
    """A misspelt key must not be silently ignored (it would leave a guardrail at its default)."""
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0][:100]!r}; known keys: {', '.join(known)}",
                          source=source, field=f"{prefix}{unknown[0][:100]}")


def settings_from_document(doc: dict[str, Any] | None, *, source: str = "policy") -> PolicySettings:
    """Settings from a FinOpsPolicy object, its ``spec``, or a bare settings mapping.

    A FinOpsPolicy spec also carries scope, schedule, data sources and the git
    target; those belong to the operator, so only the settings keys are read here.
    """
    if not doc:
        return PolicySettings()
    if not isinstance(doc, dict):
        raise ConfigError("expected a mapping (a FinOpsPolicy or its spec)", source=source)
    whole = doc.get("kind") == "FinOpsPolicy" or "spec" in doc
    if whole:
        _no_unknown_keys(doc, OBJECT_KEYS, source, "")
    spec = doc.get("spec", doc) if whole else doc
    if not isinstance(spec, dict):
        raise ConfigError("spec must be a mapping", source=source, field="spec")
    _no_unknown_keys(spec, SETTINGS_KEYS + OPERATOR_KEYS, source, "spec." if whole else "")
    return load_policy({k: v for k, v in spec.items() if k in SETTINGS_KEYS}, source=source)
