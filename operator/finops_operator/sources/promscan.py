"""One live usage scan: which queries, in which order, and the assembly of their answers.

Requests per scan (whatever the number of containers and the window length):

1. the probe at the window end (one bundle, :func:`probe`): the recording rules'
   samples in the last hour, series now and in the first bucket
   (``recordingRules`` Auto/Require), and the raw CPU samples of the last hour
   (unless Require). A down or hung server fails here, before any fan-out;
2. the CPU statistics per bucket, one range query (at step = bucket) per
   statistic: count, mean (or rate), max, std and each percentile. When the
   window holds few enough samples and no time filter applies
   (:func:`use_remote_read`), one remote read replaces queries here, in 3 and
   in 4 (:mod:`.promremote`): of each recorded series (every statistic), or of
   the raw CPU counter (its max, std and percentiles); a server that refuses it
   gets those queries after all;
3. the memory statistics per bucket, the same;
4. the exact window quantiles, one instant query per resource and percentile;
5. container facts, one instant query each: restarts, OOM kills, throttled and
   total CFS periods, requests, limits;
6. objects: pod owners, ReplicaSet/Job owners, HPAs, node allocatable and
   labels, pod creation times and nodes;
7. only when the scope is narrower than the cluster or a ``timeWindow``
   filters the statistics: every pod's per-bucket usage, for node usage (a
   node's usage is every pod on it, at every hour), one range query per part.

2-7 are sent concurrently (``parallel`` at a time), so Prometheus evaluates
them on several cores; :func:`planned` counts them from the same parts
:func:`_send` sends. Node usage is the sum of the pods' per-bucket means by
``kube_pod_info`` node, computed here: no join query.
"""
from __future__ import annotations

import functools
import gc
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from ..errors import ConfigError, DataSourceError, DataSourceRefused
from ..models import Window
from ..settings import TimeWindow
from . import promql, promremote, promusage
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


_GC_LOCK = threading.Lock()
_GC_PAUSES = [0, False]          # scans in progress, whether the first one turned the collector off


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while scans decode and assemble their answers, back on after the last.

    A 10,000-container scan allocates a few million small objects (JSON lists and dicts, labels, per-pod
    statistics) that stay alive until it ends; each time the young generation fills up, the collector
    walks all of them again: measured 2.4 s of a 5.3 s client-side assembly. Reference counting still frees
    everything that is not a cycle; the collector resumes (as it was) when the last scan ends.
    """
    with _GC_LOCK:
        if _GC_PAUSES[0] == 0:
            _GC_PAUSES[1] = gc.isenabled()
            gc.disable()
        _GC_PAUSES[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_PAUSES[0] -= 1
            if _GC_PAUSES[0] == 0 and _GC_PAUSES[1]:
                gc.enable()


def whole_cluster(scope: promql.Scope) -> bool:
    """Whether the scope's containers are every container (then node usage needs no extra query)."""
    return scope.namespaces in (".+", ".*") and not scope.exclude_namespaces


def needs_pod_means(plans: dict[str, UsagePlan], scope: promql.Scope) -> bool:
    """Whether node usage needs its own query: the scan's buckets miss pods (a narrower scope) or hold only
    the time-windowed samples."""
    return not whole_cluster(scope) or any(plan.time_filter is not None for plan in plans.values())


def range_parts(plans: dict[str, UsagePlan], scope: promql.Scope,
                remote: frozenset[str] = frozenset()) -> dict[str, dict[str, str]]:
    """The per-bucket range queries of one scan, by group (``cpu``, ``memory``, ``pod_means``) and statistic;
    the statistics the remote-read samples give (resources in ``remote``) are left out."""
    parts = {name: promusage.bucket_stats(plans[name], scope) for name in RESOURCES}
    for name in remote:
        keep = () if plans[name].rules else REMOTE_KEEPS
        parts[name] = {stat: expr for stat, expr in parts[name].items() if stat in keep}
    if needs_pod_means(plans, scope):
        parts["pod_means"] = promusage.pod_means(scope, plans["cpu"], plans["cpu"].bucket_s)
    return parts


def instant_parts(plans: dict[str, UsagePlan], scope: promql.Scope,
                  remote: frozenset[str] = frozenset()) -> dict[str, str]:
    """The exact window quantiles of one scan (``<resource>_q<percent>``), one instant query each; those of
    the resources in ``remote`` are left out (the remote-read samples give them)."""
    return {k: v for name in RESOURCES if name not in remote
            for k, v in promusage.window_quantiles(plans[name], scope).items()}


REMOTE_KEEPS = ("count", "rate")       # raw CPU parts that stay PromQL (plain, no subquery) with remote read


def planned(plans: dict[str, UsagePlan], scope: promql.Scope) -> int:
    """HTTP requests one scan sends when no attempt is retried (see the module doc): the probe, objects and
    one per part (facts, statistics). The larger of the counts with and without recording rules, since the probe
    decides which after the budget is set."""
    def count(rules: bool) -> int:
        these = {name: replace(plan, rules=rules) for name, plan in plans.items()}
        return 2 + len(promql.container_facts(scope, 1)) + sum(map(len, range_parts(these, scope).values())) \
            + len(instant_parts(these, scope))
    return max(count(True), count(False))


@dataclass(frozen=True, slots=True)
class Probe:
    """What the probe learnt: whether to read the recording rules, and the samples per hour a remote read
    would move."""

    rules: bool
    raw_per_hour: float            # raw CPU counter samples in the last hour (0: not asked)
    rule_per_hour: float = 0.0     # CPU recording-rule samples in the last hour


def probe(source: "PrometheusSource", request: ScanRequest, grid: BucketGrid) -> Probe:
    """The probe: whether to read the recording rules (see ``recordingRules``), and how many raw CPU counter
    samples the scope holds per hour (for :func:`use_remote_read`)."""
    end = grid.ends[-1]
    parts = {} if request.rules == "Require" else {"raw": promusage.raw_samples_per_hour(request.scope)}
    if request.rules != "Off":
        parts.update(promusage.rule_probe(request.scope, grid.bucket_s, int(end - grid.ends[0])))
    seen = source.bundle(promql.bundle(parts), int(end))
    cpu, memory, first, raw = (sum(v for _, v in seen.get(part, [])) for part in ("cpu", "memory", "start", "raw"))
    if request.rules == "Off":
        return Probe(False, raw)
    if request.rules == "Require" and not (cpu and memory):
        missing = " and ".join(rule for rule, n in ((promusage.CPU_RULE, cpu), (promusage.MEMORY_RULE, memory))
                               if not n)
        raise ConfigError(f"recordingRules is Require but {source.where} has no {missing} series for the scope; "
                          "load operator/finops_operator/data/prometheus-rules.yaml (or the chart's "
                          "recordingRules.enabled) or set recordingRules: Auto", source=source.where,
                          field="prometheus.recordingRules")
    if request.rules == "Auto" and cpu and memory and not first:
        log.info("recording rules start after the window's first bucket: reading the raw series")
    return Probe(bool(cpu and memory) and (bool(first) or request.rules == "Require"), raw, cpu)


REMOTE_READ_MAX_SAMPLES = 4_000_000     # ~72 MB of decompressed protobuf, decoded one series at a time


def use_remote_read(source: "PrometheusSource", plans: dict[str, UsagePlan], grid: BucketGrid,
                    seen: Probe) -> frozenset[str]:
    """The resources whose statistics come from remote-read samples instead of per-statistic queries: with
    the recording rules both (every statistic; the probe's rule samples per hour, per resource, over the
    window), else raw CPU (the ones needing subqueries; raw samples per hour over the window and the
    rate's reach); never one with a time filter, nor when the server refused it before or the samples
    are too many to move."""
    if source.remote_read != "Auto" or source.remote_read_served is False:
        return frozenset()
    cpu = plans["cpu"]
    if cpu.rules:
        fits = 0 < seen.rule_per_hour * grid.span_s / 3600 <= REMOTE_READ_MAX_SAMPLES
        return frozenset(name for name in RESOURCES if fits and plans[name].time_filter is None)
    fits = 0 < seen.raw_per_hour * (grid.span_s + cpu.rate_s) / 3600 <= REMOTE_READ_MAX_SAMPLES
    return frozenset({"cpu"}) if fits and cpu.time_filter is None else frozenset()


def plans_for(request: ScanRequest, grid: BucketGrid, rules: bool) -> dict[str, UsagePlan]:
    step = request.window.step_seconds
    return {name: UsagePlan(resource=name, rules=rules, bucket_s=grid.bucket_s, step_s=step, rate_s=request.rate_s,
                            window_s=grid.span_s, quantiles=request.percentiles.get(name, ()),
                            time_filter=in_window(request.time_windows.get(name), grid.start - grid.bucket_s,
                                                  int(grid.ends[-1])))
            for name in RESOURCES}


def scan(source: "PrometheusSource", request: ScanRequest) -> "UsageResult":
    """Send the scan's requests (within ``source.budget``) and assemble the result (:mod:`.promassemble`)."""
    began, before = time.monotonic(), source.requests
    grid = BucketGrid.of(request.window)
    probe_plans = plans_for(request, grid, False)
    what = f"a usage scan of {request.window.end - request.window.start}"
    with source.budget(planned(probe_plans, request.scope), what), gc_paused():
        seen = probe(source, request, grid)          # a down or hung server fails here, before any fan-out
        plans = plans_for(request, grid, seen.rules)
        remote = use_remote_read(source, plans, grid, seen)
        with ThreadPoolExecutor(max_workers=source.parallel) as pool:
            answers = _send(source, request, grid, plans, remote, pool)
        return _assemble(source, request, answers, seen.rules, began, before)


def _assemble(source: "PrometheusSource", request: ScanRequest, answers: Answers, rules: bool, began: float,
              before: int) -> "UsageResult":
    from .promassemble import assemble
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


def _jobs(source: "PrometheusSource", grid: BucketGrid, plans: dict[str, UsagePlan], scope: promql.Scope,
          remote: frozenset[str]) -> dict[tuple[str, str], Callable]:
    """One call per statistic (a range or instant query), keyed (group, statistic)."""
    end = int(grid.ends[-1])
    keys = {"pod_means": ("namespace", "pod")}
    jobs: dict[tuple[str, str], Callable] = {}
    for group, parts in range_parts(plans, scope, remote).items():
        for stat, expr in parts.items():
            jobs[(group, stat)] = functools.partial(read_buckets, source, expr, grid, f"{WHAT[group]} ({stat})",
                                                    keys.get(group, ("namespace", "pod", "container")), stat)
    for stat, expr in instant_parts(plans, scope, remote).items():
        jobs[("window_q", stat)] = functools.partial(window_quantile_answer, source, stat, expr, end)
    return jobs


WHAT = {"cpu": "CPU statistics", "memory": "memory statistics", "pod_means": "pod means"}


def _fixed_jobs(source: "PrometheusSource", scope: promql.Scope, grid: BucketGrid
                ) -> dict[tuple[str, str], Callable]:
    """The requests that do not depend on the probe: objects (one bundle) and the container facts."""
    end, span = int(grid.ends[-1]), grid.span_s
    objects = " or ".join((promql.owners(scope, span), promql.hpa_specs(scope, span), promql.node_info(scope, span),
                           promql.bundle(promusage.pod_facts(scope, span))))
    return {("objects", ""): functools.partial(source.bundle, objects, end),
            **{("facts", stat): functools.partial(instant_rows, source, expr, end)
               for stat, expr in promql.container_facts(scope, span).items()}}


def _run(pool: ThreadPoolExecutor, jobs: dict[tuple[str, str], Callable]) -> dict[tuple[str, str], object]:
    futures = {job: pool.submit(call) for job, call in jobs.items()}
    return {job: future.result() for job, future in futures.items()}   # the first error propagates


def _send(source: "PrometheusSource", request: ScanRequest, grid: BucketGrid, plans: dict[str, UsagePlan],
          remote: frozenset[str], pool: ThreadPoolExecutor) -> Answers:
    scope = request.scope
    jobs = {**_fixed_jobs(source, scope, grid), **_jobs(source, grid, plans, scope, remote)}
    if remote:
        jobs[("remote", "")] = functools.partial(remote_stats, source, grid, plans, scope, remote)
    got = _run(pool, jobs)
    if remote and got[("remote", "")] is None:        # not served: the queries after all
        fallback = {job: call for job, call in _jobs(source, grid, plans, scope, frozenset()).items()
                    if job not in got}
        source.extend_budget(len(fallback), "the statistics by queries (remote read refused)")
        got.update(_run(pool, fallback))
    buckets: dict[str, Buckets] = {group: {} for group in (*RESOURCES, *(g for g, _ in got if g == "pod_means"))}
    slices: dict[str, int] = {}
    window_q: dict[str, list] = {}
    facts: dict[str, list] = {}
    notes: list[str] = []
    for (group, stat), answer in got.items():
        if group in buckets:
            part, n = answer
            for key, row in part.items():
                buckets[group].setdefault(key, {}).update(row)
            slices[group] = max(slices.get(group, 1), n)
        elif group == "window_q":
            rows, note = answer
            if rows is not None:
                window_q[stat] = rows
            else:
                notes.append(note)
        elif group == "facts":
            facts[stat] = answer
        elif group == "remote" and answer is not None:
            for name, (part, rows) in answer.items():
                for key, row in part.items():
                    buckets[name].setdefault(key, {}).update(row)
                window_q.update(rows)
    expected = {name: expected_counts(buckets[name], request.window, source.scrape_interval,
                                      request.time_windows.get(name)) for name in RESOURCES}
    notes += [f"{WHAT[name]} range queries read in {n} time slices (the server's sample limit)"
              for name, n in slices.items() if n > 1]
    return Answers(window=request.window, grid=grid, plans=plans,
                   buckets={name: buckets[name] for name in RESOURCES}, expected=expected, window_q=window_q,
                   facts=facts, objects=got[("objects", "")], pod_means=buckets.get("pod_means"),
                   chunks=max(slices.values(), default=1), notes=notes)


def remote_stats(source: "PrometheusSource", grid: BucketGrid, plans: dict[str, UsagePlan], scope: promql.Scope,
                 resources: frozenset[str]) -> dict[str, tuple[Buckets, dict[str, list]]] | None:
    """What the left-out queries would give, per resource, from remote-read samples (:mod:`.promremote`): the
    recorded rule series (every statistic) or the raw CPU counter (its rates: max, std, percentiles).
    Read one resource after the other, so one answer is held at a time. None when the server refuses it
    (then it is not asked again on this source) or a rule's series were not sampled together."""
    out: dict[str, tuple[Buckets, dict[str, list]]] = {}
    try:
        for name in sorted(resources):
            plan = plans[name]
            got = _remote_rule(source, grid, plan, scope) if plan.rules else _remote_raw_cpu(source, grid, plan, scope)
            if got is None:
                log.info("remote read: the %s rule's series are not on one time grid; reading them by queries", name)
                return None
            out[name] = got
    except DataSourceRefused as exc:
        source.remote_read_served = False
        log.info("remote read refused (%s): the statistics come from queries", exc)
        return None
    source.remote_read_served = True
    return out


def _remote_raw_cpu(source: "PrometheusSource", grid: BucketGrid, plan: UsagePlan, scope: promql.Scope):
    steps = promremote.step_times(grid.ends, grid.bucket_s, plan.step_s)
    matchers = [promremote.parse_matcher(m) for m in promusage.remote_matchers(plan, scope)]
    raw = source.read_raw(matchers, int(steps[0] - plan.rate_s) * 1000, int(steps[-1]) * 1000)
    keys, matrix = promremote.container_rates(promremote.iter_series(raw, source=source.where), steps, plan.rate_s)
    del raw
    return promremote.figures(keys, matrix, steps, grid.ends, grid.bucket_s, plan.quantiles)


def _remote_rule(source: "PrometheusSource", grid: BucketGrid, plan: UsagePlan, scope: promql.Scope):
    matchers = [promremote.parse_matcher(m) for m in promusage.remote_matchers(plan, scope)]
    start, end = int(grid.ends[0]) - grid.bucket_s, int(grid.ends[-1])
    raw = source.read_raw(matchers, start * 1000 + 1, end * 1000)
    got = promremote.gauge_matrix(promremote.decode_columns(raw, source=source.where), start, end,
                                  max_cells=2 * REMOTE_READ_MAX_SAMPLES)
    del raw
    if got is None:
        return None
    keys, times, matrix = got
    return promremote.figures(keys, matrix, times, grid.ends, grid.bucket_s, plan.quantiles, resource=plan.resource,
                              stats=("count", "mean", "max", "std"))


def over_limit(exc: DataSourceError) -> bool:
    """Whether the server refused a query for the samples it would load (Prometheus query.max-samples,
    VictoriaMetrics search.maxSamplesPerQuery, Thanos/Mimir limits)."""
    text = str(exc).lower()
    return any(hint in text for hint in LIMIT_HINTS)


def read_buckets(source: "PrometheusSource", expr: str, grid: BucketGrid, what: str,
                 keys: tuple[str, ...], stat: str) -> tuple[Buckets, int]:
    """One statistic's per-bucket range query, and the time slices it took: one, unless the server's sample
    limit refuses it; then its buckets are read in halves (again while refused) and joined. Exact either
    way: buckets are independent."""
    def read(lo: int, hi: int) -> tuple[Buckets, int]:
        try:
            answer = source.query_range(expr, int(grid.ends[lo]), int(grid.ends[hi]), grid.bucket_s)
            return parse_buckets(answer, grid, source=source.where, what=what, keys=keys, stat=stat), 1
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
            for name, values in row.items():
                into[name] = np.fmax(into[name], values) if name in into else values
        return left, a + b

    return read(0, len(grid.ends) - 1)


def instant_rows(source: "PrometheusSource", expr: str, at: int) -> list:
    """The rows (labels, value) of one part's instant query."""
    return [row for rows in source.bundle(expr, at).values() for row in rows]


def window_quantile_answer(source: "PrometheusSource", stat: str, expr: str, at: int) -> tuple[list | None, str]:
    """One exact window quantile's rows (``stat``: ``<resource>_q<percent>``), or (when the server's sample
    limit refuses one pass over the window) None and a note: each pod's quantile is then its largest bucket
    quantile, an upper bound."""
    try:
        return instant_rows(source, expr, at), ""
    except DataSourceRefused as exc:
        if not over_limit(exc):
            raise
    resource, percent = stat.split("_q")
    note = (f"window quantile {resource} p{percent}: the server's sample limit refuses one pass over the window; "
            "the largest per-bucket quantile is used (an upper bound). Raise query.max-samples or load the "
            "recording rules")
    log.warning(note)
    return None, note
