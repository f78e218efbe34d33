"""Read a FinOpsPolicy object into what one run needs: settings, scope, data sources, git target, schedule.

The CRD's schema already rejects most bad input at ``kubectl apply`` time; this
module checks again (objects may predate a schema change, or come from a CLI
file) and checks what a schema cannot: that the cron expression ever fires,
that the time zone exists in this operator's tz database, and that a policy
outside the operator's namespace only scans its own namespace. Every error is a
:class:`ConfigError` whose ``source`` is ``FinOpsPolicy <ns>/<name>`` and whose
``field`` is the spec path (``spec.dataSources.prometheus.url``).

Schedules are cron expressions in the policy's time zone, DST-correct
(:func:`next_run`): each local wall-clock time fires once; a time skipped by a
spring-forward jump fires at the end of the gap; a time repeated by a
fall-back fires at its first occurrence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from ..errors import ConfigError, FinOpsError
from ..reconcile import GitTarget
from ..settings import MAX_HISTORY_WINDOW, Mode, PolicySettings, settings_from_document
from ..sources.prometheus import check_headers
from ..sources.state import check_live_settings
from ..units import parse_duration

DEFAULT_EXCLUDED = ("kube-system", "kube-public", "kube-node-lease")
# Clone URLs the Git provider accepts: https, ssh, scp-like user@host:path (file:// is gated, see below).
GIT_CLONE_URL = r"^(https://[^\s]+|ssh://[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+)$"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


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


@dataclass(frozen=True)
class AwsSpec:
    region: str
    cost_source: str = "CostExplorer"


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


def parse_time_zone(name: str, *, source: str = "policy", where: str = "spec.timeZone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin or UTC",
                          source=source, field=where) from None


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


def _mapping(value: Any, source: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"expected a mapping, got {type(value).__name__}", source=source, field=where)
    return value


def _secret_ref(value: Any, source: str, where: str) -> SecretRef | None:
    if value is None:
        return None
    data = _mapping(value, source, where)
    name, key = data.get("name"), data.get("key") or "token"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{name!r} is not a Secret name; write the name of a Secret in the policy's namespace",
                          source=source, field=f"{where}.name")
    return SecretRef(name, str(key))


def _prometheus(spec: dict[str, Any], source: str) -> PrometheusSpec:
    where = "spec.dataSources.prometheus"
    data = _mapping(_mapping(spec.get("dataSources"), source, "spec.dataSources").get("prometheus"), source, where)
    url = data.get("url")
    if not url:
        raise ConfigError("a Prometheus-compatible query URL is required (the operator sizes from its history); "
                          "add spec.dataSources.prometheus.url, e.g. http://prometheus-operated.monitoring:9090",
                          source=source, field=f"{where}.url")
    if not isinstance(url, str) or not re.match(r"^https?://\S+$", url):
        raise ConfigError(f"{url!r} is not an http(s) URL", source=source, field=f"{where}.url")
    headers = check_headers(_mapping(data.get("headers"), source, f"{where}.headers"), source=source,
                            field=f"{where}.headers")
    step = data.get("stepSeconds", 300)
    if not isinstance(step, int) or isinstance(step, bool) or not 15 <= step <= 3600:
        raise ConfigError(f"stepSeconds must be an integer from 15 to 3600, got {step!r}", source=source,
                          field=f"{where}.stepSeconds")
    history = parse_duration(data.get("historyWindow", "14d"), maximum=MAX_HISTORY_WINDOW, source=source,
                             field=f"{where}.historyWindow")
    if history < timedelta(seconds=step):
        raise ConfigError(f"historyWindow {data.get('historyWindow')} is shorter than one step of {step}s; "
                          "lengthen it or lower stepSeconds", source=source, field=f"{where}.historyWindow")
    timeout = data.get("timeoutSeconds", 60)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 600:
        raise ConfigError(f"timeoutSeconds must be an integer from 1 to 600, got {timeout!r}", source=source,
                          field=f"{where}.timeoutSeconds")
    return PrometheusSpec(url=url.rstrip("/"), history=history, step_seconds=step, timeout_seconds=timeout,
                          bearer_token=_secret_ref(data.get("bearerTokenSecretRef"), source,
                                                   f"{where}.bearerTokenSecretRef"),
                          headers=headers)


def _aws(spec: dict[str, Any], source: str) -> AwsSpec | None:
    data = _mapping(spec.get("dataSources"), source, "spec.dataSources").get("aws")
    if data is None:
        return None
    data = _mapping(data, source, "spec.dataSources.aws")
    region = data.get("region")
    if not isinstance(region, str) or not re.match(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$", region):
        raise ConfigError(f"{region!r} is not an AWS region; write e.g. eu-central-1", source=source,
                          field="spec.dataSources.aws.region")
    return AwsSpec(region, str(data.get("costSource") or "CostExplorer"))


def _git(spec: dict[str, Any], mode: Mode, source: str, allow_local: bool = False) -> GitSpec | None:
    data = spec.get("git")
    if data is None:
        if mode != Mode.DRY_RUN:
            raise ConfigError(f"spec.git is required in mode {mode.value}: add spec.git (repository, baseBranch, "
                              "tokenSecretRef), or set spec.mode: DryRun to only record findings",
                              source=source, field="spec.git")
        return None
    data = _mapping(data, source, "spec.git")
    provider = data.get("provider") or "GitHub"
    repo = data.get("repository")
    if provider not in ("GitHub", "Git"):
        raise ConfigError(f"unknown provider {provider!r}; use GitHub or Git", source=source, field="spec.git.provider")
    if provider == "GitHub" and not (isinstance(repo, str) and re.match(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$", repo)):
        raise ConfigError(f"{repo!r}: write the repository as owner/name (e.g. acme/gitops) for provider GitHub",
                          source=source, field="spec.git.repository")
    if provider == "Git":
        _check_clone_url(repo, source, allow_local)
    token = _secret_ref(data.get("tokenSecretRef"), source, "spec.git.tokenSecretRef")
    if provider == "GitHub" and token is None:
        raise ConfigError("provider GitHub needs a token: add spec.git.tokenSecretRef (name and key of a Secret "
                          "holding a GitHub token)", source=source, field="spec.git.tokenSecretRef")
    paths = tuple(str(p).strip("/") for p in data.get("paths") or ())
    if any(p.startswith("..") or "/../" in f"/{p}/" for p in paths):
        raise ConfigError("paths must stay inside the repository (relative, no '..')", source=source,
                          field="spec.git.paths")
    return GitSpec(repository=repo, provider=provider, api_url=str(data.get("apiUrl") or "https://api.github.com"),
                   base_branch=str(data.get("baseBranch") or "main"), paths=paths, token=token,
                   labels=tuple(data.get("labels") or ("finops",)), reviewers=tuple(data.get("reviewers") or ()),
                   draft=bool(data.get("draft", False)))


def _check_clone_url(repo: Any, source: str, allow_local: bool) -> None:
    """A remote the operator may push to: https, ssh or user@host:path; file:// only when the operator allows it."""
    if isinstance(repo, str) and repo.startswith("file://"):
        if allow_local:
            return
        raise ConfigError(f"{repo!r}: file:// remotes are on the operator's own disk and are refused; use an "
                          "https://, ssh:// or user@host:path clone URL (an operator started with "
                          "FINOPS_ALLOW_LOCAL_GIT=true accepts file:// for tests)", source=source,
                          field="spec.git.repository")
    if not (isinstance(repo, str) and re.match(GIT_CLONE_URL, repo)):
        raise ConfigError(f"{repo!r}: write a clone URL (https://, ssh:// or user@host:path) for provider Git",
                          source=source, field="spec.git.repository")


def _scope(spec: dict[str, Any], namespace: str, operator_ns: str, source: str) -> ScopeSpec:
    data = _mapping(spec.get("scope"), source, "spec.scope")
    namespaces = tuple(data.get("namespaces") or ())
    exclude = tuple(data.get("excludeNamespaces", DEFAULT_EXCLUDED) or ())
    clash = sorted(set(namespaces) & set(exclude))
    if clash:
        raise ConfigError(f"namespaces {clash} are both listed and excluded; remove them from one list",
                          source=source, field="spec.scope.excludeNamespaces")
    confined = None if namespace == operator_ns else namespace
    if confined is not None and namespaces and confined not in namespaces:
        raise ConfigError(f"a policy outside the operator's namespace ({operator_ns}) scans only its own namespace "
                          f"{namespace!r}, but spec.scope.namespaces lists only {list(namespaces)}; add {namespace!r} "
                          f"or move the policy to {operator_ns}", source=source, field="spec.scope.namespaces")
    if confined is not None and confined in exclude:
        raise ConfigError(f"the policy's own namespace {namespace!r} is excluded, so it would scan nothing",
                          source=source, field="spec.scope.excludeNamespaces")
    return ScopeSpec(namespaces=namespaces, exclude=exclude,
                     namespace_selector=data.get("namespaceSelector") or None,
                     label_selector=data.get("labelSelector") or None, confined_to=confined)


def read_policy(body: dict[str, Any], *, operator_ns: str, allow_local_git: bool = False) -> PolicySpec:
    """Parse and check a FinOpsPolicy object (as the API returns it). Raises ConfigError naming the field.

    ``allow_local_git`` (the operator's FINOPS_ALLOW_LOCAL_GIT, never a policy field) accepts file://
    remotes: tests and single-node demos only.
    """
    meta = body.get("metadata") or {}
    name, namespace = meta.get("name") or "?", meta.get("namespace") or "default"
    source = f"FinOpsPolicy {namespace}/{name}"
    spec = _mapping(body.get("spec"), source, "spec")
    try:
        settings = settings_from_document(spec, source=source)
    except ConfigError as exc:
        raise ConfigError(exc.message, source=source, field=f"spec.{exc.field}" if exc.field else "spec") from None
    check_live_settings(settings, source=source, prefix="spec.")
    time_zone = str(spec.get("timeZone") or "UTC")
    parse_time_zone(time_zone, source=source)
    try:
        return PolicySpec(
            name=name, namespace=namespace, uid=meta.get("uid"), generation=int(meta.get("generation") or 0),
            settings=settings, scope=_scope(spec, namespace, operator_ns, source),
            schedule=parse_schedule(str(spec.get("schedule") or "0 6 * * *"), source=source), time_zone=time_zone,
            prometheus=_prometheus(spec, source), aws=_aws(spec, source), git=_git(spec, settings.mode, source, allow_local_git))
    except FinOpsError as exc:
        raise exc.located(source=source) from None
