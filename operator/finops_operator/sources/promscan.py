"""One live usage scan: which queries, in which order, and the assembly of their answers.

Requests per scan (whatever the number of containers and the window length):

1. the probe at the window end: ``count`` of the CPU recording rule now and in
   the first bucket (``recordingRules`` Auto/Require), or ``vector(1)`` (Off).
   A down or hung server fails here, before any fan-out;
2. CPU statistics per bucket (a range query at step = bucket);
3. memory statistics per bucket (the same);
4. the exact window quantiles of both resources (one instant query);
5. container facts: restarts, OOM kills, throttling, requests and limits;
6. objects: pod owners, ReplicaSet/Job owners, HPAs, node allocatable and
   labels, pod creation times and nodes;
7. only when the scope is narrower than the cluster or a ``timeWindow``
   filters the statistics: every pod's per-bucket usage, for node usage (a
   node's usage is every pod on it, at every hour).

2-7 are sent concurrently (``parallel``). Node usage is the sum of the pods'
per-bucket means by ``kube_pod_info`` node, computed here: no join query.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import ConfigError, DataSourceError, DataSourceRefused
from ..models import Window
from ..settings import TimeWindow
from . import promql, promusage
from .prombuckets import BucketGrid, Buckets, expected_counts, parse_buckets
from .promusage import UsagePlan
from .promwindow import in_window

if TYPE_CHECKING:
    from .prometheus import PrometheusSource, UsageResult

log = logging.getLogger(__name__)
RESOURCES = ("cpu", "memory")
LIMIT_HINTS = ("too many samples", "maxsamplesperquery", "exceeded the maximum number", "max-samples")


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """What :meth:`PrometheusSource.collect` was asked for (the window is step-aligned)."""

    scope: promql.Scope
    window: Window
    percentiles: dict[str, tuple[int, ...]]
    time_windows: dict[str, TimeWindow | None] = field(default_factory=dict)
    rate_s: int = 300
    rules: str = "Auto"               # Auto | Require | Off
    allow_empty: bool = False


@dataclass(slots=True)
class Answers:
    """What the requests of one scan returned (parsed), for the pure assembly."""

    window: Window
    grid: BucketGrid
    plans: dict[str, UsagePlan]
    buckets: dict[str, Buckets]
    expected: dict[str, np.ndarray]
    window_q: dict[str, list]
    facts: dict[str, list]
    objects: dict[str, list]
    pod_means: Buckets | None = None
    chunks: int = 1
    notes: list[str] = field(default_factory=list)


def whole_cluster(scope: promql.Scope) -> bool:
    """Whether the scope's containers are every container (then node usage needs no extra query)."""
    return scope.namespaces in (".+", ".*") and not scope.exclude_namespaces


def needs_pod_means(plans: dict[str, UsagePlan], scope: promql.Scope) -> bool:
    """Whether node usage needs its own query: the scan's buckets miss pods (a narrower scope) or hold only
    the time-windowed samples."""
    return not whole_cluster(scope) or any(plan.time_filter is not None for plan in plans.values())


def planned(plans: dict[str, UsagePlan], scope: promql.Scope) -> int:
    """HTTP requests one scan sends when no attempt is retried (see the module doc)."""
    return 5 + any(plan.quantiles for plan in plans.values()) + needs_pod_means(plans, scope)


def detect_rules(source: "PrometheusSource", request: ScanRequest, grid: BucketGrid) -> bool:
    """The probe: whether to read the recording rules (see ``recordingRules``)."""
    end = grid.ends[-1]
    if request.rules == "Off":
        source.query("vector(1)", int(end))
        return False
    seen = source.bundle(promusage.rule_probe(request.scope, grid.bucket_s, int(end - grid.ends[0])), int(end))
    cpu, memory, first = (sum(v for _, v in seen.get(part, [])) for part in ("cpu", "memory", "start"))
    if request.rules == "Require" and not (cpu and memory):
        missing = " and ".join(rule for rule, n in ((promusage.CPU_RULE, cpu), (promusage.MEMORY_RULE, memory))
                               if not n)
        raise ConfigError(f"recordingRules is Require but {source.where} has no {missing} series for the scope; "
                          "load operator/finops_operator/data/prometheus-rules.yaml (or the chart's "
                          "recordingRules.enabled) or set recordingRules: Auto", source=source.where,
                          field="prometheus.recordingRules")
    if request.rules == "Auto" and cpu and memory and not first:
        log.info("recording rules start after the window's first bucket: reading the raw series")
    return bool(cpu and memory) and (bool(first) or request.rules == "Require")


def plans_for(request: ScanRequest, grid: BucketGrid, rules: bool) -> dict[str, UsagePlan]:
    step = request.window.step_seconds
    return {name: UsagePlan(resource=name, rules=rules, bucket_s=grid.bucket_s, step_s=step, rate_s=request.rate_s,
                            window_s=grid.span_s, quantiles=request.percentiles.get(name, ()),
                            time_filter=in_window(request.time_windows.get(name), grid.start - grid.bucket_s,
                                                  int(grid.ends[-1])))
            for name in RESOURCES}


def scan(source: "PrometheusSource", request: ScanRequest) -> "UsageResult":
    """Send the scan's requests (within ``source.budget``) and assemble the result (:mod:`.promassemble`)."""
    from .promassemble import assemble
    began, before = time.monotonic(), source.requests
    grid = BucketGrid.of(request.window)
    probe_plans = plans_for(request, grid, False)
    what = f"a usage scan of {request.window.end - request.window.start}"
    with source.budget(planned(probe_plans, request.scope), what):
        rules = detect_rules(source, request, grid)
        plans = plans_for(request, grid, rules)
        answers = _send(source, request, grid, plans)
    if not answers.buckets["cpu"] and not request.allow_empty:
        window = request.window
        raise DataSourceError(
            f"no container_cpu_usage_seconds_total series for namespaces =~ {request.scope.namespaces!r} between "
            f"{window.start.isoformat()} and {window.end.isoformat()}; check the scope and that cAdvisor is "
            "scraped (no findings are made without data)", source=source.where)
    result = assemble(request, answers)
    result.rules, result.chunks, result.notes = rules, answers.chunks, answers.notes
    result.queries = source.requests - before
    result.seconds = time.monotonic() - began
    log.info("prometheus scan: %d containers, %d nodes, %d requests, %s, %.1fs", len(result.usage), len(result.nodes),
             result.queries, "recording rules" if rules else "raw series", result.seconds)
    return result


def _send(source: "PrometheusSource", request: ScanRequest, grid: BucketGrid,
          plans: dict[str, UsagePlan]) -> Answers:
    scope, end, span = request.scope, int(grid.ends[-1]), grid.span_s

    def buckets(expr: str, what: str, keys: tuple[str, ...] = ("namespace", "pod", "container")) -> Callable:
        return lambda: read_buckets(source, expr, grid, what, keys)

    quantiles = {k: v for name in RESOURCES for k, v in promusage.window_quantiles(plans[name], scope).items()}
    objects = " or ".join((promql.owners(scope, span), promql.hpa_specs(scope, span), promql.node_info(scope, span),
                           promql.bundle(promusage.pod_facts(scope, span))))
    jobs: dict[str, Callable] = {
        "cpu": buckets(promusage.bucket_stats(plans["cpu"], scope), "CPU statistics"),
        "memory": buckets(promusage.bucket_stats(plans["memory"], scope), "memory statistics"),
        "facts": lambda: source.bundle(promql.container_facts(scope, span), end),
        "objects": lambda: source.bundle(objects, end),
    }
    if quantiles:
        jobs["window_q"] = lambda: window_quantile_answer(source, promql.bundle(quantiles), end)
    if needs_pod_means(plans, scope):
        jobs["pod_means"] = buckets(promusage.pod_means(scope, plans["cpu"], grid.bucket_s), "pod means",
                                    ("namespace", "pod"))
    with ThreadPoolExecutor(max_workers=source.parallel) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        got = {name: future.result() for name, future in futures.items()}   # the first error propagates
    expected = {name: expected_counts(got[name][0], request.window, source.scrape_interval,
                                      request.time_windows.get(name)) for name in RESOURCES}
    slices = {name: got[name][1] for name in ("cpu", "memory", "pod_means") if name in got}
    window_q, notes = got.get("window_q", ({}, []))
    notes = list(notes) + [f"{name} range query read in {n} time slices (the server's sample limit)"
                           for name, n in slices.items() if n > 1]
    return Answers(window=request.window, grid=grid, plans=plans,
                   buckets={name: got[name][0] for name in RESOURCES}, expected=expected, window_q=window_q,
                   facts=got["facts"], objects=got["objects"],
                   pod_means=got["pod_means"][0] if "pod_means" in got else None,
                   chunks=max(slices.values(), default=1), notes=notes)


def over_limit(exc: DataSourceError) -> bool:
    """Whether the server refused a query for the samples it would load (Prometheus query.max-samples,
    VictoriaMetrics search.maxSamplesPerQuery, Thanos/Mimir limits)."""
    text = str(exc).lower()
    return any(hint in text for hint in LIMIT_HINTS)


def read_buckets(source: "PrometheusSource", expr: str, grid: BucketGrid, what: str,
                 keys: tuple[str, ...]) -> tuple[Buckets, int]:
    """A per-bucket range query, and the time slices it took: one, unless the server's sample limit refuses
    it; then its buckets are read in halves (again while refused) and joined. Exact either way: buckets are
    independent."""
    def read(lo: int, hi: int) -> tuple[Buckets, int]:
        try:
            answer = source.query_range(expr, int(grid.ends[lo]), int(grid.ends[hi]), grid.bucket_s)
            return parse_buckets(answer, grid, source=source.where, what=what, keys=keys), 1
        except DataSourceRefused as exc:
            if lo == hi or not over_limit(exc):
                raise
        source.extend_budget(1, f"the {what} query in slices")
        log.warning("%s: the server's sample limit refused %d buckets at once; reading them in two halves",
                    what, hi - lo + 1)
        mid = (lo + hi) // 2
        (left, a), (right, b) = read(lo, mid), read(mid + 1, hi)
        for key, row in right.items():
            into = left.setdefault(key, {})
            for stat, values in row.items():
                into[stat] = np.fmax(into[stat], values) if stat in into else values
        return left, a + b

    return read(0, len(grid.ends) - 1)


def window_quantile_answer(source: "PrometheusSource", expr: str, at: int) -> tuple[dict[str, list], list[str]]:
    """The exact window quantiles, or (when the server's sample limit refuses one pass over the window)
    none, with a note: each pod's quantile is then its largest bucket quantile, an upper bound."""
    try:
        return source.bundle(expr, at), []
    except DataSourceRefused as exc:
        if not over_limit(exc):
            raise
    note = ("window quantiles: the server's sample limit refuses one pass over the window; the largest "
            "per-bucket quantile is used (an upper bound). Raise query.max-samples or load the recording rules")
    log.warning(note)
    return {}, [note]
