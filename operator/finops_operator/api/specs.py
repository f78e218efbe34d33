"""The spec model of the FinOpsPolicy custom resource (and shared types): the one source of its shape.

:mod:`.crdgen` generates the CRDs' ``spec`` schemas from these models
(``python -m finops_operator.api.crdgen``), and :mod:`.policy` / :mod:`.budget`
validate specs with them (the Budget's model lives in :mod:`.budget`), so a bound, an enum, a pattern or a CEL rule is written
once. What a schema cannot check (a cron expression that never fires, a time zone
this operator's tz database lacks, namespace confinement, operator-level switches)
stays in :mod:`.policy`.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from ..errors import ConfigError
from ..settings import PolicySettings
from ..settings_base import Matches, Rule, SettingsModel, TimeZone, cel_quote
from ..units import DURATION_PATTERN, duration_ms_cel, parse_duration

SET = {"x-kubernetes-list-type": "set"}
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
NamespaceName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
LabelValue = Annotated[str, Field(max_length=63)]
DEFAULT_EXCLUDED = ("kube-system", "kube-public", "kube-node-lease")
MAX_HISTORY_MS = 90 * 86_400_000   # settings.MAX_HISTORY_WINDOW in milliseconds (the CEL rule's unit)


def _namespaces(description: str, default: list[str] | None = None) -> Any:
    extra: dict[str, Any] = {"default": list(default)} if default is not None else {"default_factory": list}
    return Field(max_length=256, description=description, json_schema_extra=SET, **extra)


# --------------------------------------------------------------------------- scope


class SelectorRequirement(SettingsModel):
    """One matchExpressions entry."""

    rules = (Rule("(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
                  "matchExpressions: operators In and NotIn need values; Exists and DoesNotExist take none",
                  lambda r: (r.operator in ("In", "NotIn")) == bool(r.values)),)

    key: str = Field(min_length=1, max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] | None = Field(default=None, max_length=64)


class LabelSelector(SettingsModel):
    """Standard Kubernetes label selector (matchLabels / matchExpressions)."""

    model_config = {"json_schema_extra": {"x-kubernetes-map-type": "atomic"}}

    match_labels: dict[str, LabelValue] | None = Field(default=None, max_length=32)
    match_expressions: list[SelectorRequirement] | None = Field(default=None, max_length=16)


def _no_clash(scope: "PolicyScope") -> bool:
    return not set(scope.namespaces) & set(scope.exclude_namespaces)


class PolicyScope(SettingsModel):
    """Which namespaces and workloads the policy covers. Empty: every namespace the policy may see. A policy outside the operator's namespace is always confined to its own namespace; namespaces/namespaceSelector then only narrow it further."""  # noqa: E501

    rules = (Rule("!has(self.namespaces) || !has(self.excludeNamespaces) || "
                  "!self.namespaces.exists(n, n in self.excludeNamespaces)",
                  "a namespace must not be listed in both scope.namespaces and scope.excludeNamespaces",
                  _no_clash, field="excludeNamespaces"),)

    namespaces: list[NamespaceName] = _namespaces(
        "Namespaces to scan by name (in addition to namespaceSelector). Empty with no selector means all.")
    exclude_namespaces: list[NamespaceName] = _namespaces("Namespaces never scanned, whatever else matches.",
                                                          list(DEFAULT_EXCLUDED))
    namespace_selector: LabelSelector | None = Field(default=None, description=(
        "Standard Kubernetes label selector (matchLabels / matchExpressions) over namespace labels."))
    label_selector: LabelSelector | None = Field(default=None, description=(
        "Only workloads whose labels match are scanned (Deployments, StatefulSets, DaemonSets, CronJobs)."))


# --------------------------------------------------------------------------- schedule


def _cron_field(value: str) -> str:
    item = f"([*]|{value}(-{value})?)(/[0-9]{{1,2}})?"
    return f"{item}(,{item})*"


_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_WEEKDAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
CRON_PATTERN = ("^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|" + " ".join(_cron_field(v) for v in (
    "[0-5]?[0-9]", "([01]?[0-9]|2[0-3])", "(0?[1-9]|[12][0-9]|3[01])", f"(0?[1-9]|1[0-2]|{_MONTHS})",
    f"([0-7]|{_WEEKDAYS})")) + ")$")
# No OpenAPI pattern: the apiserver would print the whole 900-character regex before the message.
Schedule = Annotated[str, Field(min_length=1, max_length=100, description=(
    "When to run, as a 5-field cron expression (minute hour day-of-month month day-of-week) in spec.timeZone, "
    "e.g. \"0 6 * * 1-5\" for 06:00 on weekdays; names JAN-DEC / SUN-SAT in upper case; or a macro such as "
    "@daily.")), Matches(CRON_PATTERN, (
        "schedule must be a 5-field cron expression \"minute hour day-of-month month day-of-week\" such as "
        "\"0 6 * * *\" (06:00 daily) or \"30 7 * * MON-FRI\", or a macro such as @daily; minute 0-59, hour 0-23, "
        "day 1-31, month 1-12 or JAN-DEC, weekday 0-7 or SUN-SAT"), cel=True, pattern=False)]


# --------------------------------------------------------------------------- data sources


class SecretKeyRef(SettingsModel):
    """A key of a Secret in this policy's namespace (the operator must be allowed to get it; see the chart's rbac.secretRefs)."""  # noqa: E501

    name: Annotated[str, Field(min_length=1, max_length=253), Matches(DNS_SUBDOMAIN, (
        "secret name must be a Secret name (lower-case DNS subdomain); write the name of a Secret in the "
        "policy's namespace"))]
    key: str = Field(default="token", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


_SECRET_NAME = Annotated[str, Field(min_length=1, max_length=253), Matches(DNS_SUBDOMAIN, (
    "secret name must be a Secret name (lower-case DNS subdomain); write the name of a Secret in the "
    "policy's namespace"))]


class CaSecretKeyRef(SecretKeyRef):
    """A key of a Secret holding a PEM CA bundle (``ca.crt`` unless said otherwise)."""

    key: str = Field(default="ca.crt", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class TlsSecretRef(SettingsModel):
    """A Secret of type kubernetes.io/tls (keys ``tls.crt`` and ``tls.key``) in this policy's namespace."""

    name: _SECRET_NAME


class PrometheusTls(SettingsModel):
    """TLS towards the query API: the CA that signed its certificate, or no check at all; a client certificate."""

    rules = (Rule("!has(self.insecureSkipVerify) || !self.insecureSkipVerify || !has(self.caSecretRef)",
                  "tls.insecureSkipVerify turns certificate checks off, so tls.caSecretRef would be ignored; "
                  "set one of them", lambda t: not (t.insecure_skip_verify and t.ca_secret_ref is not None),
                  field="insecureSkipVerify"),)

    ca_secret_ref: CaSecretKeyRef | None = Field(default=None, description=(
        "A Secret key holding the PEM CA bundle that signed the server's certificate (key ca.crt by default)."))
    insecure_skip_verify: bool = Field(default=False, description=(
        "Do not check the server's certificate (test set-ups only: anyone on the path can read the queries)."))
    client_cert_secret_ref: TlsSecretRef | None = Field(default=None, description=(
        "A kubernetes.io/tls Secret (tls.crt, tls.key) presented as the client certificate (mutual TLS)."))


def _duration_ms(text: str) -> int | None:
    """Length in milliseconds, None when the form is wrong or zero (other rules and parse_duration report it)."""
    try:
        return int(parse_duration(text) / timedelta(milliseconds=1))
    except ConfigError:
        return None


def _within_history_maximum(text: str) -> bool:
    ms = _duration_ms(text)
    return ms is None or ms <= MAX_HISTORY_MS


_IS_DURATION = f"self.matches({cel_quote(DURATION_PATTERN)})"
HistoryWindow = Annotated[str, Field(max_length=16, description=(
    "How much history to size from, as a Prometheus/Go-style duration (units ms, s, m, h, d, w), e.g. 14d or "
    "336h; at most 90d.")),
    Matches(DURATION_PATTERN, "historyWindow must be a duration such as 14d, 336h or 2w (units ms, s, m, h, d, w; "
            "no spaces, no decimals, at most 9 digits a number)", cel=True),
    Rule(f"!{_IS_DURATION} || {duration_ms_cel()} <= {MAX_HISTORY_MS}",
         "historyWindow must be at most 90d (the maximum of 90 days: longer windows need too many Prometheus "
         "requests)", _within_history_maximum)]

_HEADER_TOKEN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
_CONTROL = r"[\x00-\x1f\x7f]"


def _bad_header_name(headers: dict[str, str]) -> bool | str:
    bad = [k for k in headers if len(k) > 256 or not re.fullmatch(_HEADER_TOKEN, k)]
    return bad[0] if bad else True


def _authorization(headers: dict[str, str]) -> bool | str:
    bad = [k for k in headers if k.lower() == "authorization"]
    return bad[0] if bad else True


HeaderValue = Annotated[str, Field(max_length=1024), Rule(
    f"!self.matches({cel_quote(_CONTROL)})",
    "header values must be text without control characters (no CR, LF or tab)",
    lambda v: re.search(_CONTROL, v) is None)]
Headers = Annotated[dict[str, HeaderValue], Field(max_length=16, description=(
    "Extra HTTP headers, e.g. X-Scope-OrgID for Mimir. Not for credentials (use bearerTokenSecretRef).")),
    Rule(f"self.all(k, size(k) <= 256 && k.matches({cel_quote(_HEADER_TOKEN)}))",
         "header names must be HTTP tokens (letters, digits and !#$%&'*+.^_`|~-, at most 256)", _bad_header_name),
    Rule("!self.exists(k, k.lowerAscii() == 'authorization')",
         "headers must not carry Authorization (it would sit in plain text in the policy); put the token in a "
         "Secret and use bearerTokenSecretRef", _authorization)]


def _history_covers_step(prometheus: "PrometheusSource") -> bool:
    ms = _duration_ms(prometheus.history_window)
    return ms is None or ms > MAX_HISTORY_MS or ms >= prometheus.step_seconds * 1000


class PrometheusSource(SettingsModel):
    """A Prometheus-compatible query API (Prometheus, Thanos, Mimir, VictoriaMetrics) with cAdvisor and kube-state-metrics series."""  # noqa: E501

    rules = (Rule(f"!has(self.historyWindow) || !has(self.stepSeconds) || !self.historyWindow.matches("
                  f"{cel_quote(DURATION_PATTERN)}) || {duration_ms_cel('self.historyWindow')} >= "
                  "self.stepSeconds * 1000",
                  "prometheus.historyWindow must be at least one step (stepSeconds) long; it is shorter than one "
                  "step: lengthen it or lower stepSeconds", _history_covers_step, field="historyWindow"),)

    url: Annotated[str, Field(max_length=2048, description=(
        "Base URL of the query API, e.g. http://prometheus-operated.monitoring:9090")),
        Matches(r"^https?://[^\s/$.?#][^\s]*$", "url must be an http(s) URL such as "
                "http://prometheus-operated.monitoring:9090")]
    history_window: HistoryWindow = "14d"
    step_seconds: int = Field(default=300, ge=15, le=3600, description="Resolution of the range queries, in seconds.")
    timeout_seconds: int = Field(default=60, ge=1, le=600, description="Timeout of one query, in seconds.")
    bearer_token_secret_ref: SecretKeyRef | None = None
    headers: Headers | None = None
    tls: PrometheusTls | None = None
    cluster_label: Annotated[str, Field(min_length=1, max_length=128, description=(
        "The label that tells clusters apart in a shared backend (Thanos, Mimir, VictoriaMetrics); used with "
        "cluster.")), Matches(r"^[a-zA-Z_][a-zA-Z0-9_]*$", "clusterLabel must be a Prometheus label name "
                              "(letters, digits and _, not starting with a digit), e.g. cluster")] = "cluster"
    cluster: str | None = Field(default=None, min_length=1, max_length=253, description=(
        "Only read series whose clusterLabel equals this value: a label matcher added to every query, for "
        "backends that hold many clusters. Absent: every series in the backend is this cluster's."))
    recording_rules: Literal["Auto", "Require", "Off"] = Field(default="Auto", description=(
        "Auto: read the recording rules (operator/finops_operator/data/prometheus-rules.yaml, the chart's "
        "recordingRules.enabled) when the backend has them, else the raw cAdvisor series. Require: fail a run "
        "whose backend lacks them. Off: always the raw series."))
    remote_read: Literal["Auto", "Off"] = Field(default="Auto", description=(
        "Auto: read the samples over the remote-read API (POST /api/v1/read) and compute the statistics in "
        "the operator instead of one query per statistic: both recorded series with the recording rules, "
        "else the raw CPU counter (its rates), when the probe counts at most 4 million samples in the window; "
        "a backend that does not serve it (404) gets the queries, and is not asked again. Off: always "
        "the queries."))


S3_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_DUCKDB_NEEDS = "aws.cur.engine DuckDB needs bucket and exportName (where the CUR 2.0 export writes its Parquet files)"
_ATHENA_NEEDS = "aws.cur.engine Athena needs database, table and outputLocation (the CUR 2.0 table and where results go)"


class CurSource(SettingsModel):
    """Where the CUR 2.0 export is read: its Parquet files in S3 (DuckDB, default) or its Athena table."""

    rules = (Rule("(has(self.engine) && self.engine == 'Athena') || (has(self.bucket) && has(self.exportName))",
                  _DUCKDB_NEEDS, lambda c: c.engine == "Athena" or (c.bucket is not None and c.export_name is not None)),
             Rule("!has(self.engine) || self.engine != 'Athena' || "
                  "(has(self.database) && has(self.table) && has(self.outputLocation))", _ATHENA_NEEDS,
                  lambda c: c.engine != "Athena" or None not in (c.database, c.table, c.output_location)))

    engine: Literal["DuckDB", "Athena"] = Field(default="DuckDB", description=(
        "DuckDB: download the export's Parquet files (only new or changed ones) and query them in the operator. "
        "Athena: run the same SQL on the export's Athena table, for accounts whose CUR is too large to download."))
    bucket: str | None = Field(default=None, max_length=63, pattern=S3_BUCKET,
                               description="DuckDB: the S3 bucket the Data Export delivers to.")
    prefix: str = Field(default="", max_length=512, pattern=r"^([A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*)?$",
                        description="DuckDB: the export's S3 path prefix (no leading or trailing slash).")
    export_name: str | None = Field(default=None, max_length=128, pattern=r"^[0-9A-Za-z!._*'()-]+$",
                                    description="DuckDB: the export's name (files are under "
                                                "<prefix>/<exportName>/data/BILLING_PERIOD=YYYY-MM/).")
    max_download_gib: int = Field(default=20, ge=1, le=1024, description=(
        "DuckDB: the most the local copy of the CUR may hold for the periods read; above it the read stops "
        "with an error saying to use engine Athena."))
    database: str | None = Field(default=None, max_length=255, pattern=r"^[a-zA-Z0-9_]+$",
                                 description="Athena: the Glue database of the CUR 2.0 table.")
    table: str | None = Field(default=None, max_length=255, pattern=r"^[a-zA-Z0-9_]+$",
                              description="Athena: the CUR 2.0 table.")
    workgroup: str = Field(default="primary", max_length=128, pattern=r"^[a-zA-Z0-9._-]+$",
                           description="Athena: the workgroup queries run in.")
    output_location: str | None = Field(default=None, max_length=1024,
                                        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
                                        description="Athena: S3 URI for query results, e.g. s3://my-bucket/athena/")


class AwsSource(SettingsModel):
    """AWS cost data: Cost Explorer (light), or the Cost and Usage Report 2.0 (DuckDB or Athena)."""

    rules = (Rule("!has(self.costSource) || self.costSource != 'CUR' || has(self.cur)",
                  "aws.cur (engine DuckDB: bucket, exportName; engine Athena: database, table, outputLocation) is "
                  "required when aws.costSource is CUR",
                  lambda a: a.cost_source != "CUR" or a.cur is not None, field="cur"),)

    region: Annotated[str, Field(max_length=32, description="AWS region, e.g. eu-central-1."),
                      Matches(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$",
                              "region must be an AWS region such as eu-central-1")]
    cost_source: Literal["CostExplorer", "CUR"] = Field(default="CostExplorer", description=(
        "CostExplorer (GetCostAndUsage, daily by service) or CUR (the Cost and Usage Report 2.0: per resource, "
        "with Savings Plans, RI and spot effective cost)."))
    cur: CurSource | None = None


class DataSources(SettingsModel):
    """Where utilization and cost data come from."""

    prometheus: PrometheusSource | None = None
    aws: AwsSource | None = None


# --------------------------------------------------------------------------- pricing

_NODE_TYPE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
HourlyPrice = Annotated[str, Field(max_length=16, description="USD per hour as a decimal string, e.g. \"0.192\"."),
                        Matches(r"^[0-9]{1,5}(\.[0-9]{1,6})?$", "prices must be USD per hour written as a decimal "
                                "string such as \"0.192\" (quoted; at most 6 decimals)")]


def _node_type_keys(prices: dict[str, str]) -> bool | str:
    bad = [k for k in prices if len(k) > 63 or not re.fullmatch(_NODE_TYPE, k)]
    return bad[0] if bad else True


InstancePrices = Annotated[dict[str, HourlyPrice], Field(max_length=256, description=(
    "Hourly on-demand price per instance type (e.g. m5.xlarge: \"0.15\"), replacing the price book's; user prices "
    "are not discounted further.")),
    Rule(f"self.all(k, size(k) <= 63 && k.matches({cel_quote(_NODE_TYPE)}))",
         "instancePrices keys must be instance types or node label values such as m5.xlarge (letters, digits, "
         "'-', '_', '.', at most 63)", _node_type_keys)]


class ConfigMapKeyRef(SettingsModel):
    """A key of a ConfigMap in this policy's namespace (the operator must be allowed to get it; see the chart's rbac.configMapRefs)."""  # noqa: E501

    name: Annotated[str, Field(min_length=1, max_length=253), Matches(DNS_SUBDOMAIN, (
        "configMapRef.name must be a ConfigMap name (lower-case DNS subdomain) in the policy's namespace"))]
    key: str = Field(default="prices.yaml", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class PricingSpec(SettingsModel):
    """Where node and volume prices come from: the bundled price book of the cluster's region, with these overrides."""

    instance_prices: InstancePrices | None = None
    discount_percent: int = Field(default=0, ge=0, le=99, description=(
        "A discount in percent (e.g. an Enterprise Discount Program) applied to list and live prices, not to "
        "instancePrices or a custom table."))
    spot_discount_percent: int | None = Field(default=None, ge=0, le=99, description=(
        "Spot nodes without an observed spot price cost on-demand x (100 - this) / 100; default: the price book's "
        "planning assumption (60)."))
    config_map_ref: ConfigMapKeyRef | None = Field(default=None, description=(
        "A full custom price table (YAML or JSON: nodeLabel, nodeTypes {<label value>: {hourly, vcpu, memoryGiB}}, "
        "storage, controlPlaneHourly; USD, currency-free) replacing the bundled book, e.g. for on-prem clusters."))
    live: bool = Field(default=False, description=(
        "Read on-demand prices from the AWS Price List API (pricing:GetProducts) and spot prices for each node's "
        "zone (ec2:DescribeSpotPriceHistory), cached; the price book stays the fallback."))


# --------------------------------------------------------------------------- git

GITHUB_REPOSITORY = r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$"
# Clone URLs the Git provider accepts: https, ssh, file (gated by the operator, see api/policy.py), user@host:path.
GIT_CLONE_URL = r"^((https|ssh|file)://[^ ]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^ ]+)$"


def _github_form(git: "GitSource") -> bool:
    return git.provider != "GitHub" or re.fullmatch(GITHUB_REPOSITORY, git.repository) is not None


def _clone_url(git: "GitSource") -> bool:
    return git.provider != "Git" or (re.fullmatch(GIT_CLONE_URL, git.repository) is not None
                                     and not any(c.isspace() for c in git.repository))


RepoPath = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^/\s][^\s]*$"), Rule(
    "!self.matches('(^|/)[.][.](/|$)')", "paths must stay inside the repository (relative, no '..' segments)",
    lambda p: re.search(r"(^|/)[.][.](/|$)", p) is None)]
BranchName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._/-]+$",
                                  description="Branch the pull requests target."), Rule(
    "!self.contains('..') && !self.startsWith('/') && !self.endsWith('/') && !self.endsWith('.lock')",
    "baseBranch is not a valid Git branch name (no '..', no leading or trailing '/', no '.lock' suffix)",
    lambda b: ".." not in b and not b.startswith("/") and not b.endswith("/") and not b.endswith(".lock"))]
Reviewer = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9](-?[A-Za-z0-9])*(/[A-Za-z0-9._-]+)?$")]


class GitSource(SettingsModel):
    """The GitOps repository that receives the pull requests."""

    rules = (
        Rule(f"(has(self.provider) && self.provider != 'GitHub') || self.repository.matches("
             f"{cel_quote(GITHUB_REPOSITORY)})",
             "git.repository must be written owner/name (e.g. acme/gitops) when git.provider is GitHub",
             _github_form, field="repository"),
        Rule(f"!has(self.provider) || self.provider != 'Git' || self.repository.matches({cel_quote(GIT_CLONE_URL)})",
             "git.repository must be a clone URL (https://, ssh:// or user@host:path) when git.provider is Git; "
             "file:// only where the operator runs with FINOPS_ALLOW_LOCAL_GIT=true", _clone_url,
             field="repository"),
        Rule("(has(self.provider) && self.provider != 'GitHub') || has(self.tokenSecretRef)",
             "git.tokenSecretRef (name and key of a Secret holding a GitHub token) is required when git.provider "
             "is GitHub", lambda g: g.provider != "GitHub" or g.token_secret_ref is not None,
             field="tokenSecretRef"),
    )

    provider: Literal["GitHub", "Git"] = Field(default="GitHub", description=(
        "GitHub opens pull requests through the GitHub API; Git only pushes a branch to any Git remote."))
    repository: str = Field(min_length=3, max_length=512, description="owner/name for GitHub, a clone URL for Git.")
    api_url: Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$", description=(
        "GitHub API base URL for GitHub Enterprise Server, e.g. https://github.example.com/api/v3. Default "
        "https://api.github.com."))] | None = None
    base_branch: BranchName = "main"
    paths: list[RepoPath] = Field(default_factory=list, max_length=32, json_schema_extra=SET, description=(
        "Repository directories the operator may edit (manifests, Kustomize, Helm values, Terraform). Empty means "
        "the whole repository."))
    token_secret_ref: SecretKeyRef | None = None
    labels: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default=["finops"], max_length=16, json_schema_extra=SET, description="Labels put on every pull request.")
    reviewers: list[Reviewer] = Field(default_factory=list, max_length=16, json_schema_extra=SET, description=(
        "GitHub users (login) or teams (org/team) asked to review."))
    draft: bool = Field(default=False, description="Open pull requests as drafts.")


# --------------------------------------------------------------------------- FinOpsPolicy


class PolicySpecSchema(PolicySettings):
    """Desired behaviour of one scan policy."""

    rules = (Rule("(has(self.mode) && self.mode == 'DryRun') || has(self.git)",
                  "spec.git is required when spec.mode is PullRequest or RequireApproval: add spec.git (repository, "
                  "baseBranch, tokenSecretRef), or set spec.mode: DryRun to only record findings",
                  lambda s: s.mode.value == "DryRun" or s.git is not None, field="git"),)

    scope: PolicyScope = PolicyScope()
    schedule: Schedule = "0 6 * * *"
    time_zone: Annotated[TimeZone, Field(description=(
        "IANA time zone the schedule is read in, as Area/Location (e.g. Europe/Berlin, America/New_York) or UTC. "
        "Daylight saving time is followed."))] = "UTC"
    data_sources: DataSources = DataSources()
    pricing: PricingSpec | None = None
    git: GitSource | None = None
