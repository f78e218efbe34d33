"""Read a FinOpsPolicy object into what one run needs: settings, scope, data sources, git target, schedule.

The spec's shape is checked by :class:`.specs.PolicySpecSchema`, the model the
CRD's schema is generated from (objects may predate a schema change, so the
operator checks again what the apiserver checked at ``kubectl apply`` time);
this module adds what a schema cannot check: that the cron expression ever
fires, that the time zone exists in this operator's tz database (the model's
TimeZone type), that a policy outside the operator's namespace only scans its
own namespace, and operator-level switches (file:// remotes). Every error is a
:class:`ConfigError` whose ``source`` is ``FinOpsPolicy <ns>/<name>`` and whose
``field`` is the spec path (``spec.dataSources.prometheus.url``).

Schedules are cron expressions in the policy's time zone, DST-correct
(:func:`next_run`): each local wall-clock time fires once; a time skipped by a
spring-forward jump fires at the end of the gap; a time repeated by a
fall-back fires at its first occurrence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from ..errors import ConfigError, FinOpsError
from ..pricing.overrides import PriceOverrides
from ..reconcile import GitTarget
from ..settings import MAX_HISTORY_WINDOW, PolicySettings
from ..settings_base import validate_spec
from ..sources.promql import quote
from ..units import parse_duration
from . import specs
from .specs import DEFAULT_EXCLUDED


@dataclass(frozen=True)
class SecretRef:
    """A key of a Secret in the policy's namespace."""

    name: str
    key: str = "token"


@dataclass(frozen=True)
class PrometheusSpec:
    url: str
    history: timedelta = timedelta(days=14)
    step_seconds: int = 300
    timeout_seconds: int = 60
    bearer_token: SecretRef | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ca: SecretRef | None = None                 # PEM CA bundle
    insecure_skip_verify: bool = False
    client_cert: str | None = None              # a kubernetes.io/tls Secret's name (tls.crt, tls.key)
    matchers: tuple[str, ...] = ()              # added to every selector (cluster label of a shared backend)
    recording_rules: str = "Auto"               # Auto | Require | Off
    remote_read: str = "Auto"                   # Auto | Off


@dataclass(frozen=True)
class AwsSpec:
    region: str
    cost_source: str = "CostExplorer"
    cur: specs.CurSource | None = None    # where the CUR 2.0 is read when cost_source is CUR (engine and location)


@dataclass(frozen=True)
class PricingSpec:
    """``spec.pricing``: the user's prices (applied by api/wiring.py to the region's book or the custom table)."""

    overrides: PriceOverrides = field(default_factory=PriceOverrides)
    table: SecretRef | None = None        # a ConfigMap name and key (read with a GET by name, like Secrets)
    live: bool = False


@dataclass(frozen=True)
class GitSpec:
    repository: str                       # owner/name (GitHub) or a clone URL (Git)
    provider: str = "GitHub"              # GitHub | Git
    api_url: str = "https://api.github.com"
    base_branch: str = "main"
    paths: tuple[str, ...] = ()
    token: SecretRef | None = None
    labels: tuple[str, ...] = ("finops",)
    reviewers: tuple[str, ...] = ()
    draft: bool = False

    def target(self) -> GitTarget:
        return GitTarget(base_branch=self.base_branch, labels=list(self.labels), reviewers=list(self.reviewers),
                         draft=self.draft)


@dataclass(frozen=True)
class ScopeSpec:
    """Which namespaces and workloads a run covers.

    ``namespaces`` empty and no selector: every namespace (minus ``exclude``).
    ``confined_to``: set for policies outside the operator's namespace (only that one).
    """

    namespaces: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDED
    namespace_selector: dict[str, Any] | None = None
    label_selector: dict[str, Any] | None = None
    confined_to: str | None = None


@dataclass(frozen=True)
class PolicySpec:
    name: str
    namespace: str
    uid: str | None
    generation: int
    settings: PolicySettings
    scope: ScopeSpec
    schedule: str
    time_zone: str
    prometheus: PrometheusSpec
    aws: AwsSpec | None = None
    git: GitSpec | None = None
    pricing: PricingSpec = field(default_factory=PricingSpec)

    @property
    def source(self) -> str:
        return f"FinOpsPolicy {self.namespace}/{self.name}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def next_run(self, after: datetime) -> datetime:
        return next_run(self.schedule, self.zone, after)


# --------------------------------------------------------------------------- schedule


def parse_schedule(schedule: str, *, source: str = "policy", where: str = "spec.schedule") -> str:
    """The cron expression, checked to parse and to fire at least once in the next eight years."""
    text = (schedule or "").strip()
    if not croniter.is_valid(text):
        raise ConfigError(f"{schedule!r} is not a cron expression; write 5 fields 'minute hour day-of-month month "
                          "day-of-week' such as '0 6 * * *', or a macro such as @daily", source=source, field=where)
    try:
        croniter(text, datetime(2024, 1, 1)).get_next(datetime)
    except (CroniterBadDateError, CroniterBadCronError):
        raise ConfigError(f"{schedule!r} never fires (no such date, e.g. 31 February); pick a day that exists",
                          source=source, field=where) from None
    return text


def _local_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone`` as UTC: first occurrence when repeated, end of the gap when skipped."""
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # Skipped by a spring-forward jump: fire when the clock jumps, the first instant whose wall time is later.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = min(low, first), max(low, first)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def next_run(schedule: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first scheduled instant strictly after ``after`` (aware), in UTC.

    Candidates are generated as naive local wall-clock times (cron's model) and
    placed on the time line with :func:`_local_to_utc`, which keeps them in
    order; starting two hours before ``after`` covers a repeated fall-back hour.
    """
    if after.tzinfo is None:
        raise ValueError("next_run needs an aware datetime")
    start = after.astimezone(zone).replace(tzinfo=None, fold=0) - timedelta(hours=2)
    it = croniter(schedule, start)
    for _ in range(100000):
        candidate = _local_to_utc(it.get_next(datetime), zone)
        if candidate > after:
            return candidate
    raise ConfigError(f"{schedule!r} does not fire after {after.isoformat()}", field="spec.schedule")


# --------------------------------------------------------------------------- spec sections


def _secret_ref(ref: specs.SecretKeyRef | None) -> SecretRef | None:
    return None if ref is None else SecretRef(ref.name, ref.key)


def _prometheus(spec: specs.PolicySpecSchema, source: str) -> PrometheusSpec:
    where = "spec.dataSources.prometheus"
    data = spec.data_sources.prometheus
    if data is None:
        raise ConfigError("a Prometheus-compatible query URL is required (the operator sizes from its history); "
                          "add spec.dataSources.prometheus.url, e.g. http://prometheus-operated.monitoring:9090",
                          source=source, field=f"{where}.url")
    history = parse_duration(data.history_window, maximum=MAX_HISTORY_WINDOW, source=source,
                             field=f"{where}.historyWindow")
    tls = data.tls or specs.PrometheusTls()
    matchers = (f"{data.cluster_label}={quote(data.cluster)}",) if data.cluster is not None else ()
    return PrometheusSpec(url=data.url.rstrip("/"), history=history, step_seconds=data.step_seconds,
                          timeout_seconds=data.timeout_seconds,
                          bearer_token=_secret_ref(data.bearer_token_secret_ref), headers=dict(data.headers or {}),
                          ca=_secret_ref(tls.ca_secret_ref), insecure_skip_verify=tls.insecure_skip_verify,
                          client_cert=tls.client_cert_secret_ref.name if tls.client_cert_secret_ref else None,
                          matchers=matchers, recording_rules=data.recording_rules, remote_read=data.remote_read)


def _aws(spec: specs.PolicySpecSchema) -> AwsSpec | None:
    data = spec.data_sources.aws
    return None if data is None else AwsSpec(data.region, data.cost_source, data.cur)


def _pricing(spec: specs.PolicySpecSchema, source: str) -> PricingSpec:
    return read_pricing(spec.pricing, source)


def read_pricing(data: specs.PricingSpec | None, source: str) -> PricingSpec:
    """``spec.pricing`` (validated by the spec model) in numbers; also what the CLI reads from --policy."""
    if data is None:
        return PricingSpec()
    overrides = PriceOverrides(
        instance_prices={k: float(v) for k, v in (data.instance_prices or {}).items()},
        discount_percent=float(data.discount_percent),
        spot_discount_percent=None if data.spot_discount_percent is None else float(data.spot_discount_percent),
        source=source)
    table = None if data.config_map_ref is None else SecretRef(data.config_map_ref.name, data.config_map_ref.key)
    return PricingSpec(overrides=overrides, table=table, live=data.live)


def _git(spec: specs.PolicySpecSchema, source: str, allow_local: bool = False) -> GitSpec | None:
    data = spec.git
    if data is None:
        return None
    if data.provider == "Git" and data.repository.startswith("file://") and not allow_local:
        raise ConfigError(f"{data.repository!r}: file:// remotes are on the operator's own disk and are refused; use "
                          "an https://, ssh:// or user@host:path clone URL (an operator started with "
                          "FINOPS_ALLOW_LOCAL_GIT=true accepts file:// for tests)", source=source,
                          field="spec.git.repository")
    return GitSpec(repository=data.repository, provider=data.provider, api_url=data.api_url or "https://api.github.com",
                   base_branch=data.base_branch, paths=tuple(p.strip("/") for p in data.paths),
                   token=_secret_ref(data.token_secret_ref), labels=tuple(data.labels),
                   reviewers=tuple(data.reviewers), draft=data.draft)


def _selector(selector: specs.LabelSelector | None) -> dict[str, Any] | None:
    return selector.model_dump(by_alias=True, exclude_none=True) or None if selector is not None else None


def _scope(spec: specs.PolicySpecSchema, namespace: str, operator_ns: str, source: str) -> ScopeSpec:
    """The scope, confined to the policy's own namespace unless it lives in the operator's namespace."""
    namespaces, exclude = tuple(spec.scope.namespaces), tuple(spec.scope.exclude_namespaces)
    confined = None if namespace == operator_ns else namespace
    if confined is not None and namespaces and confined not in namespaces:
        raise ConfigError(f"a policy outside the operator's namespace ({operator_ns}) scans only its own namespace "
                          f"{namespace!r}, but spec.scope.namespaces lists only {list(namespaces)}; add {namespace!r} "
                          f"or move the policy to {operator_ns}", source=source, field="spec.scope.namespaces")
    if confined is not None and confined in exclude:
        raise ConfigError(f"the policy's own namespace {namespace!r} is excluded, so it would scan nothing",
                          source=source, field="spec.scope.excludeNamespaces")
    return ScopeSpec(namespaces=namespaces, exclude=exclude, namespace_selector=_selector(spec.scope.namespace_selector),
                     label_selector=_selector(spec.scope.label_selector), confined_to=confined)


def read_policy(body: dict[str, Any], *, operator_ns: str, allow_local_git: bool = False) -> PolicySpec:
    """Parse and check a FinOpsPolicy object (as the API returns it). Raises ConfigError naming the field.

    The shape (bounds, enums, patterns, cross-field rules) is checked by :class:`.specs.PolicySpecSchema`,
    the model the CRD is generated from; what follows is what a schema cannot check.
    ``allow_local_git`` (the operator's FINOPS_ALLOW_LOCAL_GIT, never a policy field) accepts file://
    remotes: tests and single-node demos only.
    """
    meta = body.get("metadata") or {}
    name, namespace = meta.get("name") or "?", meta.get("namespace") or "default"
    source = f"FinOpsPolicy {namespace}/{name}"
    raw = body.get("spec")
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping, got {type(raw).__name__}", source=source, field="spec")
    spec = validate_spec(specs.PolicySpecSchema, raw or {}, source=source, prefix="spec")
    settings = PolicySettings.model_validate({k: getattr(spec, k) for k in PolicySettings.model_fields})
    try:
        return PolicySpec(
            name=name, namespace=namespace, uid=meta.get("uid"), generation=int(meta.get("generation") or 0),
            settings=settings, scope=_scope(spec, namespace, operator_ns, source),
            schedule=parse_schedule(spec.schedule, source=source), time_zone=spec.time_zone,
            prometheus=_prometheus(spec, source), aws=_aws(spec), git=_git(spec, source, allow_local_git),
            pricing=_pricing(spec, source))
    except FinOpsError as exc:
        raise exc.located(source=source) from None
