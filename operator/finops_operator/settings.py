"""Policy settings: the pure-Python mirror of a FinOpsPolicy spec.

The same models validate a FinOpsPolicy custom resource's ``spec`` (camelCase
keys, via aliases), a CLI ``--policy`` YAML file, and the embedded demo
defaults. Field bounds and descriptions are the single source for validation
and help text.
"""
from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Any

from pydantic import Field, ValidationError, create_model, field_validator

from .detectors import REGISTRY
from .errors import ConfigError
from .settings_base import LimitPolicy, SettingsModel, TimeWindow, known_zone

__all__ = ["ChangeWindow", "DetectorSettings", "GitOpsSettings", "GuardrailSettings", "LimitPolicy", "MAX_HISTORY_WINDOW", "Mode",
           "PolicySettings", "SharedBaseEdits", "TimeWindow", "load_policy", "settings_from_document"]

MAX_HISTORY_WINDOW = timedelta(days=90)     # longest usage history a run reads (bounds its PromQL requests)


_Model = SettingsModel


def _detector_settings() -> type[SettingsModel]:
    """``spec.detectors``: one block per registered finding type, from its detector's ``settings_model``."""
    fields: dict[str, Any] = {}
    for cls in REGISTRY.values():
        fields[cls.settings_key] = (cls.settings_model, cls.settings_model())
    return create_model("DetectorSettings", __base__=SettingsModel, **fields)


DetectorSettings = _detector_settings()


class ChangeWindow(_Model):
    days: list[int] = Field(default=[0, 1, 2, 3, 4], description="Weekdays, 0=Monday .. 6=Sunday")
    start: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="17:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    time_zone: str = Field(default="UTC")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)


class GuardrailSettings(_Model):
    max_changes_per_day: int = Field(default=20, ge=0, le=10000)
    max_single_change_dollars: int = Field(default=500, ge=0, le=10_000_000, description="Whole USD/month")
    max_single_change_percent: int = Field(default=75, ge=1, le=100, description="Largest cut, in percent of the current value")
    approval_above_dollars: int = Field(default=200, ge=0, le=10_000_000, description="Findings worth more need approval (whole USD/month)")
    protected_labels: dict[str, str] = Field(default={"tier": "production", "critical": "true"})
    protected_action: str = Field(default="RequireApproval", pattern="^(Deny|RequireApproval)$")
    change_windows: list[ChangeWindow] = Field(default_factory=list, description="Empty: any time")
    min_confidence_percent: int = Field(default=60, ge=0, le=100)
    max_risk_percent: int = Field(default=60, ge=0, le=100)
    max_workloads_per_pr: int = Field(default=10, ge=1, le=500)
    max_namespaces_per_pr: int = Field(default=1, ge=1, le=100)
    max_open_prs: int = Field(default=5, ge=0, le=100)


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
    mode: Mode = Mode.PULL_REQUEST
    detectors: DetectorSettings = DetectorSettings()
    guardrails: GuardrailSettings = GuardrailSettings()
    group_by: str = Field(default="namespace", pattern="^(namespace|type|team)$")
    gitops: GitOpsSettings = GitOpsSettings()


def load_policy(data: dict[str, Any] | None, *, source: str = "policy") -> PolicySettings:
    """Validate settings; errors name the field and what to write instead."""
    try:
        return PolicySettings.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{first['msg']} (got {first.get('input')!r})", source=source, field=where) from None


SETTINGS_KEYS = ("mode", "detectors", "guardrails", "groupBy", "group_by", "gitops")
OPERATOR_KEYS = ("scope", "schedule", "timeZone", "dataSources", "git")   # read by api/policy.py
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
