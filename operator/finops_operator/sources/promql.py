"""PromQL query builders: pure string building, one small function per metric.

Every query here is *batched*: it aggregates ``by (namespace, pod, container)``
(or ``by (node)``) over the whole scope, so one HTTP request answers for every
container at once and the number of requests per scan does not grow with the
number of containers. Usage statistics over time are built in :mod:`.promusage`.

Several statistics of one series travel in one request as a *bundle*: each
statistic is tagged with a ``stat`` label by ``label_replace`` and the parts
are joined with ``or`` (their label sets differ by ``stat``, so ``or`` keeps
them all). The client splits the answer by that label.

Metric names are the real ones: cAdvisor (``container_cpu_usage_seconds_total``,
``container_memory_working_set_bytes``, ``container_cpu_cfs_*``) and
kube-state-metrics (``kube_pod_container_*``, ``kube_pod_owner``,
``kube_replicaset_owner``, ``kube_job_owner``, ``kube_horizontalpodautoscaler_*``,
``kube_node_*``, ``kube_pod_info``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError

POD_KEYS = "namespace, pod, container"
APP_CONTAINERS = 'container!="", container!="POD"'
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MATCHER = re.compile(r'^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*$')


def quote(value: str) -> str:
    """A PromQL double-quoted string literal for ``value`` (backslashes and quotes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Scope:
    """Which containers a scan covers.

    ``namespaces`` is an RE2 regex matched against the whole ``namespace``
    label (Prometheus anchors it); ``exclude_namespaces`` removes some again.
    ``matchers`` are extra label matchers added to *every* selector, for
    example ``('cluster="prod-eu"',)`` when one Thanos/Mimir holds many clusters.
    """

    namespaces: str = ".+"
    exclude_namespaces: str | None = None
    matchers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for regex, name in ((self.namespaces, "namespaces"), (self.exclude_namespaces, "excludeNamespaces")):
            if regex is None:
                continue
            try:
                re.compile(regex)
            except re.error as exc:
                raise ConfigError(f"{regex!r} is not a valid regular expression ({exc}); "
                                  "write e.g. 'team-.*|payments'", source="prometheus scope",
                                  field=name) from None
        for matcher in self.matchers:
            if not _MATCHER.match(matcher):
                raise ConfigError(f"{matcher!r} is not a PromQL label matcher; write e.g. 'cluster=\"prod\"'",
                                  source="prometheus scope", field="matchers")

    def namespace_matchers(self) -> list[str]:
        """Matchers that restrict a selector to the scope's namespaces (plus the extra matchers)."""
        parts = [f"namespace=~{quote(self.namespaces)}"]
        if self.exclude_namespaces:
            parts.append(f"namespace!~{quote(self.exclude_namespaces)}")
        return parts + list(self.matchers)


def selector(metric: str, *matchers: str) -> str:
    """``metric{m1, m2}``; empty matchers are dropped."""
    inner = ", ".join(m for m in matchers if m)
    return f"{metric}{{{inner}}}"


def duration(seconds: int) -> str:
    """A PromQL duration in whole seconds (``3600s``): exact, no unit arithmetic to get wrong."""
    if seconds <= 0:
        raise ValueError(f"PromQL durations must be positive, got {seconds}s")
    return f"{int(seconds)}s"


def open_range(seconds: int) -> str:
    """A range of ``seconds`` less one millisecond: selects (t - seconds, t] on every backend (Prometheus 2
    closes ranges on the left, Prometheus 3 and VictoriaMetrics do not), so ranges evaluated every
    ``seconds`` tile time without reading a sample on a boundary twice."""
    if seconds <= 0:
        raise ValueError(f"PromQL durations must be positive, got {seconds}s")
    return f"{int(seconds) * 1000 - 1}ms"


def tag(expr: str, stat: str) -> str:
    """Add the label ``stat=<stat>`` to every element of ``expr``'s result."""
    if not _LABEL.match(stat):
        raise ValueError(f"stat tag {stat!r} must be a label-safe word")
    return f'label_replace({expr}, "stat", "{stat}", "", "")'


def bundle(parts: dict[str, str]) -> str:
    """Join tagged parts with ``or`` so several statistics come back in one request."""
    return " or ".join(tag(expr, stat) for stat, expr in parts.items())


# --------------------------------------------------------------------------- per-container usage


def cpu_usage_series(scope: Scope, rate_window_s: int) -> str:
    """Cores used per pod container: the cAdvisor CPU counter as a rate (rate() absorbs counter resets)."""
    sel = selector("container_cpu_usage_seconds_total", APP_CONTAINERS, *scope.namespace_matchers())
    return f"sum by ({POD_KEYS}) (rate({sel}[{duration(rate_window_s)}]))"


def throttled_periods(scope: Scope, range_s: int) -> str:
    """CFS periods throttled over the range, per pod container."""
    sel = selector("container_cpu_cfs_throttled_periods_total", APP_CONTAINERS, *scope.namespace_matchers())
    return f"sum by ({POD_KEYS}) (increase({sel}[{duration(range_s)}]))"


def total_periods(scope: Scope, range_s: int) -> str:
    """CFS periods over the range, per pod container (the denominator of the throttled ratio)."""
    sel = selector("container_cpu_cfs_periods_total", APP_CONTAINERS, *scope.namespace_matchers())
    return f"sum by ({POD_KEYS}) (increase({sel}[{duration(range_s)}]))"


def restarts(scope: Scope, range_s: int) -> str:
    """Container restarts during the range (kube-state-metrics restart counter)."""
    sel = selector("kube_pod_container_status_restarts_total", *scope.namespace_matchers())
    return f"max by ({POD_KEYS}) (increase({sel}[{duration(range_s)}]))"


def oom_killed(scope: Scope, range_s: int) -> str:
    """1 for pod containers whose last termination was OOMKilled at some point in the range."""
    sel = selector("kube_pod_container_status_last_terminated_reason", 'reason="OOMKilled"',
                   *scope.namespace_matchers())
    return f"max by ({POD_KEYS}) (max_over_time({sel}[{duration(range_s)}]))"


def resource_spec(metric: str, scope: Scope, range_s: int) -> str:
    """Last CPU/memory requests or limits seen in the range, per pod container and resource."""
    sel = selector(metric, 'resource=~"cpu|memory"', *scope.namespace_matchers())
    return f"max by ({POD_KEYS}, resource) (last_over_time({sel}[{duration(range_s)}]))"


def container_facts(scope: Scope, range_s: int) -> dict[str, str]:
    """Parts, one instant query each: restarts, OOM kills, throttling counters, requests and limits (bundled
    with ``label_replace ... or`` they cost Prometheus about 1 s more at 10,000 containers, on one core)."""
    return {
        "restarts": restarts(scope, range_s),
        "oom": oom_killed(scope, range_s),
        "throttled": throttled_periods(scope, range_s),
        "periods": total_periods(scope, range_s),
        "request": resource_spec("kube_pod_container_resource_requests", scope, range_s),
        "limit": resource_spec("kube_pod_container_resource_limits", scope, range_s),
    }


# --------------------------------------------------------------------------- ownership


def owners(scope: Scope, range_s: int) -> str:
    """Bundle: pod -> owner, ReplicaSet -> owner, Job -> owner, for objects seen in the range.

    Pods replaced by a rollout are still listed (max_over_time over the range),
    so their usage maps to the same workload as their successors.
    """
    ns = scope.namespace_matchers()
    rng = duration(range_s)
    pod = selector("kube_pod_owner", *ns)
    rs = selector("kube_replicaset_owner", *ns)
    job = selector("kube_job_owner", *ns)
    return bundle({
        "pod": f"max by (namespace, pod, owner_kind, owner_name) (max_over_time({pod}[{rng}]))",
        "rs": f"max by (namespace, replicaset, owner_kind, owner_name) (max_over_time({rs}[{rng}]))",
        "job": f"max by (namespace, job_name, owner_kind, owner_name) (max_over_time({job}[{rng}]))",
    })


# --------------------------------------------------------------------------- HPA and nodes


def hpa_specs(scope: Scope, range_s: int) -> str:
    """Bundle: the HPA spec and status (last values in the range) with its scale target."""
    ns = scope.namespace_matchers()
    rng = duration(range_s)
    keys = "namespace, horizontalpodautoscaler"

    def last(metric: str, *extra: str, by: str = keys) -> str:
        return f"max by ({by}) (last_over_time({selector(metric, *extra, *ns)}[{rng}]))"

    return bundle({
        "info": last("kube_horizontalpodautoscaler_info",
                     by=f"{keys}, scaletargetref_kind, scaletargetref_name"),
        "min": last("kube_horizontalpodautoscaler_spec_min_replicas"),
        "max": last("kube_horizontalpodautoscaler_spec_max_replicas"),
        "current": last("kube_horizontalpodautoscaler_status_current_replicas"),
        "target": last("kube_horizontalpodautoscaler_spec_target_metric", 'metric_target_type="utilization"',
                       by=f"{keys}, metric_name"),
    })


def node_info(scope: Scope, range_s: int) -> str:
    """Bundle: node allocatable CPU/memory and node labels (last values in the range)."""
    rng = duration(range_s)
    alloc = selector("kube_node_status_allocatable", 'resource=~"cpu|memory"', *scope.matchers)
    labels = selector("kube_node_labels", *scope.matchers)
    return bundle({
        "allocatable": f"max by (node, resource) (last_over_time({alloc}[{rng}]))",
        "labels": f"last_over_time({labels}[{rng}])",
    })
