"""Policy settings: the pure-Python mirror of a FinOpsPolicy spec.

The same models validate a FinOpsPolicy custom resource's ``spec`` (camelCase
keys, via aliases), a CLI ``--policy`` YAML file, and the embedded demo
defaults. Field bounds and descriptions are the single source for validation
and help text.
"""
from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from .errors import ConfigError
from .models import SUPPORTED_PERCENTILES

MAX_HISTORY_WINDOW = timedelta(days=90)     # longest usage history a run reads (bounds its PromQL requests)

# A percentile the usage statistics hold (models.UsageStats): the CRD gets the same enum.
Percentile = Literal[SUPPORTED_PERCENTILES]  # type: ignore[valid-type]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              frozen=True)


class LimitPolicy(str, Enum):
    KEEP_RATIO = "KeepRatio"      # scale limits with requests, keep limit/request ratio
    NO_CPU_LIMIT = "NoCPULimit"   # drop CPU limits (avoid throttling), memory limit = keep ratio
    BURSTABLE = "Burstable"       # limit = request x burstFactor
    GUARANTEED = "Guaranteed"     # limit = request


class TimeWindow(_Model):
    """Only samples inside this window count (e.g. business hours)."""

    days: list[int] = Field(default=[0, 1, 2, 3, 4], description="Weekdays, 0=Monday .. 6=Sunday")
    start_hour: int = Field(default=8, ge=0, le=23)
    end_hour: int = Field(default=20, ge=1, le=24)
    time_zone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Berlin")


class _RightsizingSettings(_Model):
    enabled: bool = True
    headroom_percent: int = Field(default=15, ge=0, le=200, description="Added on top of the sized percentile")
    min_change_percent: int = Field(default=10, ge=0, le=100, description="Ignore changes smaller than this")
    min_monthly_savings: int = Field(default=1, ge=0, le=1_000_000, description="Ignore findings worth less (whole USD/month)")
    min_coverage_percent: int = Field(default=60, ge=1, le=100, description="Data coverage needed for a finding")
    min_history_hours: int = Field(default=24, ge=1, le=24 * 90)
    limit_policy: LimitPolicy = LimitPolicy.KEEP_RATIO
    burst_factor_percent: int = Field(default=200, ge=100, le=1000, description="Burstable: limit = request x this / 100")
    time_window: TimeWindow | None = Field(default=None, description="Only size for samples inside this window")


class CpuSettings(_RightsizingSettings):
    percentile: Percentile = Field(default=95, description="Percentile of CPU usage to size for (100 = max)")
    min_millicores: int = Field(default=10, ge=1, le=64000)
    step_millicores: int = Field(default=10, ge=1, le=1000, description="Round CPU up to this step")
    throttling_threshold_percent: int = Field(default=25, ge=1, le=100, description="Throttled CFS periods that count as under-requested")


class MemorySettings(_RightsizingSettings):
    headroom_percent: int = Field(default=20, ge=0, le=200, description="Added on top of the sized percentile")
    percentile: Percentile = Field(default=99, description="Percentile of memory usage to size for (100 = max)")
    min_mib: int = Field(default=32, ge=4, le=1048576)
    step_mib: int = Field(default=16, ge=1, le=4096, description="Round memory up to this step")
    oom_bump_percent: int = Field(default=30, ge=0, le=500, description="Raise after an OOM kill, over the larger of peak and limit")
    limit_pressure_percent: int = Field(default=90, ge=50, le=100, description="Peak above this share of the limit counts as under-requested")


class NodeSettings(_Model):
    enabled: bool = True
    max_cpu_request_percent: int = Field(default=40, ge=1, le=100, description="A node below this share of allocatable CPU requested is under-used")
    max_memory_request_percent: int = Field(default=40, ge=1, le=100)
    max_fill_percent: int = Field(default=85, ge=10, le=100, description="Other nodes may be filled up to this share when repacking")
    min_node_age_hours: int = Field(default=24, ge=0, le=8760)


class VolumeSettings(_Model):
    enabled: bool = True
    min_age_days: int = Field(default=7, ge=0, le=3650, description="Unattached for at least this long")
    snapshot_before_delete: bool = True


class DetectorSettings(_Model):
    cpu: CpuSettings = CpuSettings()
    memory: MemorySettings = MemorySettings()
    nodes: NodeSettings = NodeSettings()
    volumes: VolumeSettings = VolumeSettings()


class ChangeWindow(_Model):
    days: list[int] = Field(default=[0, 1, 2, 3, 4], description="Weekdays, 0=Monday .. 6=Sunday")
    start: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="17:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    time_zone: str = Field(default="UTC")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'") from exc
        return value


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


class Mode(str, Enum):
    DRY_RUN = "DryRun"                    # record findings, change nothing
    PULL_REQUEST = "PullRequest"          # open PRs for allowed findings
    REQUIRE_APPROVAL = "RequireApproval"  # every finding needs approval first


class PolicySettings(_Model):
    mode: Mode = Mode.PULL_REQUEST
    detectors: DetectorSettings = DetectorSettings()
    guardrails: GuardrailSettings = GuardrailSettings()
    group_by: str = Field(default="namespace", pattern="^(namespace|type|team)$")


def load_policy(data: dict[str, Any] | None, *, source: str = "policy") -> PolicySettings:
    """Validate settings; errors name the field and what to write instead."""
    try:
        return PolicySettings.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{first['msg']} (got {first.get('input')!r})", source=source, field=where) from None


SETTINGS_KEYS = ("mode", "detectors", "guardrails", "groupBy", "group_by")


def settings_from_document(doc: dict[str, Any] | None, *, source: str = "policy") -> PolicySettings:
    """Settings from a FinOpsPolicy object, its ``spec``, or a bare settings mapping.

    A FinOpsPolicy spec also carries scope, schedule, data sources and the git
    target; those belong to the operator, so only the settings keys are read here.
    """
    if not doc:
        return PolicySettings()
    if not isinstance(doc, dict):
        raise ConfigError("expected a mapping (a FinOpsPolicy or its spec)", source=source)
    spec = doc.get("spec", doc) if doc.get("kind") == "FinOpsPolicy" or "spec" in doc else doc
    if not isinstance(spec, dict):
        raise ConfigError("spec must be a mapping", source=source, field="spec")
    return load_policy({k: v for k, v in spec.items() if k in SETTINGS_KEYS}, source=source)
