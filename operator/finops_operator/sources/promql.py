"""PromQL query builders: pure string building, one small function per metric.

Every query here is *batched*: it aggregates ``by (namespace, pod, container)``
(or ``by (node)``) over the whole scope, so one HTTP request answers for every
container at once and the number of requests per scan does not grow with the
number of containers. Statistics over time are computed on the server with
subqueries (``quantile_over_time(0.95, (<expr>)[<range>:<step>])``).

Several statistics of one series travel in one request as a *bundle*: each
statistic is tagged with a ``stat`` label by ``label_replace`` and the parts
are joined with ``or`` (their label sets differ by ``stat``, so ``or`` keeps
them all). The client splits the answer by that label.

Metric names are the real ones: cAdvisor (``container_cpu_usage_seconds_total``,
``container_memory_working_set_bytes``, ``container_cpu_cfs_*``) and
kube-state-metrics (``kube_pod_container_*``, ``kube_pod_owner``,
``kube_replicaset_owner``, ``kube_job_owner``, ``kube_horizontalpodautoscaler_*``,
``kube_node_*``, ``kube_pod_info``). Node usage sums the cAdvisor container
series of the pods ``kube_pod_info`` places on each node, so it does not depend
on scrape-config relabelling adding a ``node`` label to cAdvisor series.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError

POD_KEYS = "namespace, pod, container"
APP_CONTAINERS = 'container!="", container!="POD"'
STANDARD_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
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


def tag(expr: str, stat: str) -> str:
    """Add the label ``stat=<stat>`` to every element of ``expr``'s result."""
    if not _LABEL.match(stat):
        raise ValueError(f"stat tag {stat!r} must be a label-safe word")
    return f'label_replace({expr}, "stat", "{stat}", "", "")'


def bundle(parts: dict[str, str]) -> str:
    """Join tagged parts with ``or`` so several statistics come back in one request."""
    return " or ".join(tag(expr, stat) for stat, expr in parts.items())


def stats_over_time(series: str, range_s: int, step_s: int, extra_quantiles: tuple[int, ...] = ()) -> str:
    """Quantiles, max, mean, std, sample count and first/last step of ``series`` over a range.

    ``series`` is an instant-vector expression; it is sampled every ``step_s``
    seconds over the last ``range_s`` seconds with a subquery. ``first`` and
    ``last`` are the timestamps of the first and last steps that had a value
    (``timestamp()`` of a computed series is its evaluation time).
    """
    sub = f"({series})[{duration(range_s)}:{duration(step_s)}]"
    parts = {stat: f"quantile_over_time({q}, {sub})" for stat, q in STANDARD_QUANTILES.items()}
    for q in extra_quantiles:
        parts[f"q{q}"] = f"quantile_over_time({q / 100}, {sub})"
    parts.update({
        "max": f"max_over_time({sub})",
        "mean": f"avg_over_time({sub})",
        "std": f"stddev_over_time({sub})",
        "count": f"count_over_time({sub})",
        "first": f"min_over_time(timestamp({series})[{duration(range_s)}:{duration(step_s)}])",
        "last": f"max_over_time(timestamp({series})[{duration(range_s)}:{duration(step_s)}])",
    })
    return bundle(parts)


# --------------------------------------------------------------------------- per-container usage


def cpu_usage_series(scope: Scope, rate_window_s: int) -> str:
    """Cores used per pod container: the cAdvisor CPU counter as a rate (rate() absorbs counter resets)."""
    sel = selector("container_cpu_usage_seconds_total", APP_CONTAINERS, *scope.namespace_matchers())
    return f"sum by ({POD_KEYS}) (rate({sel}[{duration(rate_window_s)}]))"


def memory_usage_series(scope: Scope) -> str:
    """Working-set bytes per pod container (what the OOM killer and the kubelet look at)."""
    sel = selector("container_memory_working_set_bytes", APP_CONTAINERS, *scope.namespace_matchers())
    return f"max by ({POD_KEYS}) ({sel})"


def cpu_usage_stats(scope: Scope, range_s: int, step_s: int, rate_window_s: int,
                    extra_quantiles: tuple[int, ...] = ()) -> str:
    """Bundle: CPU statistics per pod container over ``range_s`` (one request)."""
    return stats_over_time(cpu_usage_series(scope, rate_window_s), range_s, step_s, extra_quantiles)


def memory_usage_stats(scope: Scope, range_s: int, step_s: int, extra_quantiles: tuple[int, ...] = ()) -> str:
    """Bundle: memory statistics per pod container over ``range_s`` (one request)."""
    return stats_over_time(memory_usage_series(scope), range_s, step_s, extra_quantiles)


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


def container_facts(scope: Scope, range_s: int) -> str:
    """Bundle: restarts, OOM kills, throttling counters, requests and limits (one request)."""
    return bundle({
        "restarts": restarts(scope, range_s),
        "oom": oom_killed(scope, range_s),
        "throttled": throttled_periods(scope, range_s),
        "periods": total_periods(scope, range_s),
        "request": resource_spec("kube_pod_container_resource_requests", scope, range_s),
        "limit": resource_spec("kube_pod_container_resource_limits", scope, range_s),
    })


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


def _on_node(per_pod: str, scope: Scope) -> str:
    """Attach each pod's node (kube-state-metrics ``kube_pod_info``) and sum by node."""
    info = selector("kube_pod_info", 'node!=""', *scope.matchers)
    return (f"sum by (node) ({per_pod} * on (namespace, pod) group_left (node) "
            f"max by (namespace, pod, node) ({info}))")


def node_cpu_series(scope: Scope, rate_window_s: int) -> str:
    """Cores used per node by every container on it (all namespaces), placed by ``kube_pod_info``."""
    sel = selector("container_cpu_usage_seconds_total", APP_CONTAINERS, *scope.matchers)
    return _on_node(f"sum by (namespace, pod) (rate({sel}[{duration(rate_window_s)}]))", scope)


def node_memory_series(scope: Scope) -> str:
    """Working-set bytes per node of every container on it (all namespaces), placed by ``kube_pod_info``."""
    sel = selector("container_memory_working_set_bytes", APP_CONTAINERS, *scope.matchers)
    return _on_node(f"sum by (namespace, pod) ({sel})", scope)


def node_usage(scope: Scope, rate_window_s: int) -> str:
    """Bundle for a *range* query: per-node CPU cores and memory bytes at every step.

    Node statistics are computed by the client from these series (nodes are
    few; the join with ``kube_pod_info`` is then evaluated once per step
    instead of once per statistic).
    """
    return bundle({"cpu": node_cpu_series(scope, rate_window_s), "memory": node_memory_series(scope)})
