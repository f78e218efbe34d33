"""Allocation inputs from a live cluster: UsageHours for any window, at one hour, from Prometheus.

Usage::

    source = PrometheusSource("http://prometheus:9090")
    hours = read_usage_hours(source, Scope(namespaces="shop|payments"), start, end, inventory=inventory)
    hours.cpu_usage[row, h]        # cores, mean of hour h of container row
    source.requests                # HTTP requests so far (this read: 1 + 6 per chunk)

Every query is a *range query at a one-hour step* over the whole scope, so
one request answers for every container at once (never one per container):

=========  ===========================================================================
requests   ``avg_over_time(kube_pod_container_resource_requests{resource=~"cpu|memory"}[1h])``
usage      cpu: ``rate(container_cpu_usage_seconds_total[1h])`` (cores), memory:
           ``avg_over_time(container_memory_working_set_bytes[1h])`` (``container!="", container!="POD"``)
pods       ``max_over_time(kube_pod_info{node!=""}[1h])``: which node a pod was on each hour
nodes      allocatable cpu/memory, ``kube_node_info`` (``provider_id`` -> instance id),
           ``kube_node_labels`` (instance type, capacity type, zone, node group only)
claims     ``kube_persistentvolumeclaim_info`` -> ``kube_persistentvolume_capacity_bytes`` /
           ``kube_persistentvolume_info`` (size, storage class, EBS volume id)
owners     pod -> ReplicaSet/Job -> workload (the scan's own owners bundle, an instant query)
=========  ===========================================================================

``[1h]`` windows evaluated at ``h + 3599 s`` hold the samples of hour
``[h, h + 3600)`` (see :mod:`.promhours`), so no subquery is needed. What an
hour's figure means: requests and memory are the mean of the samples present
in the hour; CPU is the hour's core-seconds / 3600 (``rate`` over the hour),
which is the same mean for a container that ran the whole hour and lower for
one that started or stopped inside it (and NaN with a single sample). A
container seen at all in an hour is in that hour (the engine charges whole
hours, as it does for nodes).

The window is cut into chunks of ``source.chunk`` (one day by default) like
the scan, so each answer stays small (24 points per series per chunk) and
within Prometheus' per-query sample limits; the run is bounded by the
source's request budget (:meth:`PrometheusSource.budget`).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ..errors import ConfigError, DataSourceError
from ..models import Window
from ..models.costs import UsageHours, hour_starts
from . import promql
from .kubernetes import Inventory
from .prometheus import PrometheusSource, split_window
from .promhours import HOUR, HOUR_EVAL_OFFSET, NODE_LABELS, Grid, HourlyRows, parse_matrix
from .promql import APP_CONTAINERS, POD_KEYS, Scope, bundle, duration, selector
from .promstats import parse_bundle

log = logging.getLogger(__name__)
REQUESTS_PER_CHUNK = 6      # requests, usage, pods, nodes, claims (range queries) + owners (instant)
REQUESTS_PER_READ = 1       # the probe


def planned_requests(chunks: int) -> int:
    """HTTP requests one read of ``chunks`` chunks sends when no attempt is retried."""
    return REQUESTS_PER_CHUNK * chunks + REQUESTS_PER_READ


# --------------------------------------------------------------------------- queries (pure)

_H = duration(HOUR)


def requests_hourly(scope: Scope) -> str:
    """CPU and memory requests per pod container, node and resource: the hour's mean."""
    sel = selector("kube_pod_container_resource_requests", 'resource=~"cpu|memory"', *scope.namespace_matchers())
    return f"max by ({POD_KEYS}, node, resource) (avg_over_time({sel}[{_H}]))"


def usage_hourly(scope: Scope) -> str:
    """Bundle: cores (rate over the hour) and working-set bytes (the hour's mean) per pod container."""
    mem = selector("container_memory_working_set_bytes", APP_CONTAINERS, *scope.namespace_matchers())
    return bundle({"cpu": promql.cpu_usage_series(scope, HOUR),
                   "memory": f"max by ({POD_KEYS}) (avg_over_time({mem}[{_H}]))"})


def pods_hourly(scope: Scope) -> str:
    """1 for each pod on a node in the hour (a pod moved inside an hour is on both)."""
    sel = selector("kube_pod_info", 'node!=""', *scope.namespace_matchers())
    return f"max by (namespace, pod, node) (max_over_time({sel}[{_H}]))"


def nodes_hourly(scope: Scope) -> str:
    """Bundle: node allocatable cpu/memory, kube_node_info (provider_id) and identity labels, per hour.

    Only the identity labels are kept (``max by``), so a node with hundreds of
    labels costs no more than one with five.
    """
    def hourly(metric: str, by: str, *matchers: str) -> str:
        return f"max by ({by}) (max_over_time({selector(metric, *matchers, *scope.matchers)}[{_H}]))"

    return bundle({
        "allocatable": hourly("kube_node_status_allocatable", "node, resource", 'resource=~"cpu|memory"'),
        "info": hourly("kube_node_info", "node, provider_id"),
        "labels": hourly("kube_node_labels", ", ".join(["node", *sorted(NODE_LABELS)])),
    })


def claims_hourly(scope: Scope) -> str:
    """Bundle: claims seen per hour with their volume, requested size, and the volumes' capacity and identity."""
    ns = scope.namespace_matchers()

    def hourly(metric: str, by: str, *matchers: str) -> str:
        return f"max by ({by}) (max_over_time({selector(metric, *matchers)}[{_H}]))"

    return bundle({
        "claim": hourly("kube_persistentvolumeclaim_info", "namespace, persistentvolumeclaim, volumename, storageclass",
                        *ns),
        "requested": hourly("kube_persistentvolumeclaim_resource_requests_storage_bytes",
                            "namespace, persistentvolumeclaim", *ns),
        "capacity": hourly("kube_persistentvolume_capacity_bytes", "persistentvolume", *scope.matchers),
        "pv": hourly("kube_persistentvolume_info", "persistentvolume, storageclass, ebs_volume_id, csi_volume_handle",
                     *scope.matchers),
    })


# --------------------------------------------------------------------------- reading


def read_usage_hours(source: PrometheusSource, scope: Scope, start: datetime, end: datetime, *,
                     inventory: Inventory | None = None, allow_empty: bool = False) -> UsageHours:
    """UsageHours for the hours covering [start, end), from ``6 x chunks + 1`` requests.

    ``inventory`` (optional, from the Kubernetes API) fills in what Prometheus
    lacks: node identity (instance id, type), nodes without kube-state-metrics
    series, pod owners and labels. Raises ConfigError when the window needs
    more requests than the source's budget, DataSourceError when the server
    fails, answers something unusable, or (unless ``allow_empty``) has no
    container series for the scope.
    """
    began, before = time.monotonic(), source.requests
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError("start and end must be timezone-aware (UTC)", source=source.where, field="window")
    hours = hour_starts(start, end)
    if len(hours) == 0:
        raise ConfigError(f"window end {end.isoformat()} is not after start {start.isoformat()}",
                          source=source.where, field="window")
    grid = Grid(hours)
    chunks = split_window(Window(_utc(hours[0]), _utc(hours[-1]), HOUR), source.chunk)
    rows = HourlyRows(grid, source=source.where)
    with source.budget(planned_requests(len(chunks)), f"a {len(hours)}-hour allocation window in {len(chunks)} "
                                                      f"chunks of {source.chunk}"):
        source.query("vector(1)", int(hours[-1]) + HOUR_EVAL_OFFSET)   # a down server fails here, before fan-out
        for first, last in chunks:
            _read_chunk(source, scope, grid, rows, first, last)
    result = rows.build(inventory)
    if not result.containers and not allow_empty:
        raise DataSourceError(f"no container series for namespaces =~ {scope.namespaces!r} between "
                              f"{start.isoformat()} and {end.isoformat()}; check the scope and that cAdvisor and "
                              "kube-state-metrics are scraped", source=source.where)
    log.info("prometheus usage hours: %d containers, %d nodes, %d claims, %d hours, %d requests, %.1fs",
             len(result.containers), len(result.nodes), len(result.claims), len(hours), source.requests - before,
             time.monotonic() - began)
    return result


def _utc(epoch: object) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc)  # type: ignore[call-overload]


def _read_chunk(source: PrometheusSource, scope: Scope, grid: Grid, rows: HourlyRows, first: int, last: int) -> None:
    """The six requests of one chunk of hours [first, last], sent ``source.parallel`` at a time."""
    lo, hi = first + HOUR_EVAL_OFFSET, last + HOUR_EVAL_OFFSET

    def matrix(what: str, expr: str):
        return lambda: parse_matrix(source.query_range(expr, lo, hi, HOUR), grid, source=source.where, what=what)

    jobs = {
        "pods": matrix("pods", pods_hourly(scope)),
        "requests": matrix("requests", requests_hourly(scope)),
        "usage": matrix("usage", usage_hourly(scope)),
        "nodes": matrix("nodes", nodes_hourly(scope)),
        "claims": matrix("claims", claims_hourly(scope)),
        "owners": lambda: parse_bundle(source.query(promql.owners(scope, hi - lo + HOUR), hi), source=source.where),
    }
    with ThreadPoolExecutor(max_workers=source.parallel) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        answers = {name: future.result() for name, future in futures.items()}   # the first error propagates
    rows.add_pods(answers["pods"].get("", []))
    rows.add_requests(answers["requests"].get("", []))
    rows.add_usage(answers["usage"])
    rows.add_nodes(answers["nodes"])
    rows.add_claims(answers["claims"])
    rows.owners.add(answers["owners"])
