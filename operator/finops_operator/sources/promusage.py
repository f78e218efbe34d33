"""PromQL for per-bucket usage statistics: pure string building, no I/O.

A scan reads each statistic once per sample. Statistics come per *bucket*
(``stats.bucket_seconds``: a day for windows of two days or more) from RANGE
queries whose step is the bucket and whose range selector is ``[<bucket>]``,
evaluated at the bucket ends, so consecutive evaluations tile the window and
every sample is read once per statistic. The exact window quantiles are
instant ``quantile_over_time`` queries over the whole window (the buckets'
span).

Three sources of the per-container series, cheapest first:

* **Recording rules** (``data/prometheus-rules.yaml``): every statistic is a
  plain ``*_over_time(rule[<bucket>])``; no subquery at all.
* **Raw memory** (a gauge): plain ``*_over_time`` of
  ``container_memory_working_set_bytes``, aggregated ``max by (namespace,
  pod, container)`` afterwards; no subquery.
* **Raw CPU** (a counter): the per-bucket mean is ``rate(counter[<bucket>])``
  (corrected client-side for pods alive part of a bucket) and the sample
  count is ``count_over_time`` of the counter, neither a subquery; the
  per-bucket max, std and quantiles and the window quantiles need ONE
  subquery evaluation each over the whole window (``[<bucket>:<step>]`` at
  range step = bucket, or ``[<window>:<step>]`` once).

With a ``timeWindow`` (business hours) every statistic is a subquery of the
series filtered by :func:`.promwindow.in_window` (the series ``and on()`` a
filter on the local hour and weekday), so only samples inside the window count.

Each statistic is its own request (a *part*: ``{stat: expr}``), sent
concurrently by :mod:`.promscan`. Bundling them (``label_replace(...) or ...``
in one request) made Prometheus evaluate the parts one after another on one
core and pay for the relabelling and the ``or`` on every series at every
step: measured 1.53x the floor's Prometheus CPU at 10,000 containers with
recording rules. Instant lookups (the probe, facts, objects) stay bundles.
"""
from __future__ import annotations

from dataclasses import dataclass

from .promql import APP_CONTAINERS, POD_KEYS, Scope, cpu_usage_series, duration, open_range, selector

CPU_RULE = "namespace_pod_container:finops_container_cpu_usage_cores:rate5m"
MEMORY_RULE = "namespace_pod_container:finops_container_memory_working_set_bytes:max5m"
CPU_COUNTER = "container_cpu_usage_seconds_total"
MEMORY_GAUGE = "container_memory_working_set_bytes"


@dataclass(frozen=True, slots=True)
class UsagePlan:
    """What one resource's queries read: where from, at which grid, which quantiles, in which hours.

    ``bucket_s`` is the range step and range selector of the per-bucket
    queries; ``step_s`` the resolution of subqueries; ``rate_s`` the rate()
    window of raw CPU; ``window_s`` the span of the instant window quantiles
    (the buckets' span); ``quantiles`` integer percents (50..99);
    ``time_filter`` a PromQL filter from :func:`.promwindow.in_window`, or None.
    """

    resource: str                   # "cpu" | "memory"
    rules: bool
    bucket_s: int
    step_s: int
    rate_s: int
    window_s: int
    quantiles: tuple[int, ...]
    time_filter: str | None = None

    @property
    def subqueries(self) -> bool:
        """Whether the statistics need a subquery (raw CPU, or any filtered series)."""
        return self.time_filter is not None or (self.resource == "cpu" and not self.rules)


def rule_probe(scope: Scope, bucket_s: int, first_end_offset_s: int) -> dict[str, str]:
    """Parts of the probe (one bundled instant query at the window end): the CPU rule's samples in the last
    hour (``cpu``: whether it records, and what a remote read of the window would move per hour), the
    memory rule's series now (``memory``) and the CPU rule's series in the first bucket (``start``). Cheap
    (index lookups, the latest samples, one hour of the CPU rule)."""
    cpu = selector(CPU_RULE, *scope.namespace_matchers())
    memory = selector(MEMORY_RULE, *scope.namespace_matchers())
    back = f" offset {duration(first_end_offset_s)}" if first_end_offset_s > 0 else ""
    return {"cpu": f"sum(count_over_time({cpu}[1h]))", "memory": f"count({memory})",
            "start": f"count(last_over_time({cpu}[{duration(bucket_s)}]{back}))"}


def raw_samples_per_hour(scope: Scope) -> str:
    """The probe's part counting the raw CPU counter samples of the scope's containers in the last hour (what
    a remote read of the window would move, per hour)."""
    return f"sum(count_over_time({selector(CPU_COUNTER, APP_CONTAINERS, *scope.namespace_matchers())}[1h]))"


def remote_matchers(plan: UsagePlan, scope: Scope) -> list[str]:
    """The label matchers a remote read of the plan's series sends: the same series its queries read (the
    recorded rule, else the raw CPU counter; raw memory is not read remotely)."""
    if plan.rules:
        metric, extra = (CPU_RULE if plan.resource == "cpu" else MEMORY_RULE), ()
    elif plan.resource == "cpu":
        metric, extra = CPU_COUNTER, tuple(APP_CONTAINERS.split(", "))
    else:
        raise ValueError("raw memory is read by queries, not remote read")
    return [f'__name__="{metric}"', *extra, *scope.namespace_matchers()]


def _plain(plan: UsagePlan, scope: Scope) -> str:
    """The selector plain ``*_over_time`` functions read (rules, or raw memory)."""
    metric = (CPU_RULE if plan.resource == "cpu" else MEMORY_RULE) if plan.rules else MEMORY_GAUGE
    extra = () if plan.rules else (APP_CONTAINERS,)
    return selector(metric, *extra, *scope.namespace_matchers())


def series(plan: UsagePlan, scope: Scope) -> str:
    """The per-container instant-vector series (for subqueries), time-filtered when the plan says so."""
    if plan.resource == "cpu" and not plan.rules:
        expr = cpu_usage_series(scope, plan.rate_s)
    else:
        expr = f"max by ({POD_KEYS}) ({_plain(plan, scope)})"
    return expr if plan.time_filter is None else f"({expr} and on() {plan.time_filter})"


def _by(expr: str) -> str:
    return f"max by ({POD_KEYS}) ({expr})"


def bucket_stats(plan: UsagePlan, scope: Scope) -> dict[str, str]:
    """Parts, each a RANGE query at step ``bucket_s``: per pod container and bucket, the sample count, mean,
    max, std and the plan's quantiles (``q<percent>``)."""
    rng = open_range(plan.bucket_s)
    if not plan.subqueries:
        sel = f"{_plain(plan, scope)}[{rng}]"
        parts = {"count": _by(f"count_over_time({sel})"), "mean": _by(f"avg_over_time({sel})"),
                 "max": _by(f"max_over_time({sel})"), "std": _by(f"stddev_over_time({sel})")}
        parts.update({f"q{q}": _by(f"quantile_over_time({q / 100}, {sel})") for q in plan.quantiles})
        return parts
    sub = f"{series(plan, scope)}[{rng}:{duration(plan.step_s)}]"
    parts = {"max": f"max_over_time({sub})", "std": f"stddev_over_time({sub})"}
    parts.update({f"q{q}": f"quantile_over_time({q / 100}, {sub})" for q in plan.quantiles})
    if plan.time_filter is not None:       # filtered: counts and means are of the filtered points
        parts.update({"count": f"count_over_time({sub})", "mean": f"avg_over_time({sub})"})
    else:                                  # raw CPU: plain counter functions, no subquery
        counter = f"{selector(CPU_COUNTER, APP_CONTAINERS, *scope.namespace_matchers())}[{rng}]"
        parts.update({"count": _by(f"count_over_time({counter})"),
                      "rate": f"sum by ({POD_KEYS}) (rate({counter}))"})
    return parts


def window_quantiles(plan: UsagePlan, scope: Scope) -> dict[str, str]:
    """Parts (``<resource>_q<percent>``), each an instant query at the window end: the exact window quantiles
    per pod container. Plain over the rule or raw-memory series; one subquery evaluation per quantile else."""
    if not plan.subqueries:
        sel = f"{_plain(plan, scope)}[{open_range(plan.window_s)}]"
        return {f"{plan.resource}_q{q}": _by(f"quantile_over_time({q / 100}, {sel})") for q in plan.quantiles}
    sub = f"{series(plan, scope)}[{open_range(plan.window_s)}:{duration(plan.step_s)}]"
    return {f"{plan.resource}_q{q}": f"quantile_over_time({q / 100}, {sub})" for q in plan.quantiles}


def pod_means(scope: Scope, plan_cpu: UsagePlan, bucket_s: int) -> dict[str, str]:
    """Parts, each a RANGE query at step ``bucket_s``: what each pod used per bucket, in every namespace
    (``scope.matchers`` only), for node usage. Plain functions, no subquery: ``cpu_rate`` (raw: the
    counter's rate over the bucket) or ``cpu_sum`` (rules), and ``memory_sum``; sums are divided by the
    bucket's expected sample count on the client, so a pod alive part of a bucket weighs that part."""
    rng = open_range(bucket_s)
    memory = MEMORY_RULE if plan_cpu.rules else MEMORY_GAUGE
    extra = () if plan_cpu.rules else (APP_CONTAINERS,)
    mem = f"{selector(memory, *extra, *scope.matchers)}[{rng}]"
    parts = {"memory_sum": f"sum by (namespace, pod) (sum_over_time({mem}))",
             "memory_count": f"max by (namespace, pod) (count_over_time({mem}))"}
    if plan_cpu.rules:
        cpu = f"{selector(CPU_RULE, *scope.matchers)}[{rng}]"
        parts.update({"cpu_sum": f"sum by (namespace, pod) (sum_over_time({cpu}))",
                      "cpu_count": f"max by (namespace, pod) (count_over_time({cpu}))"})
    else:
        parts["cpu_rate"] = (f"sum by (namespace, pod) (rate("
                             f"{selector(CPU_COUNTER, APP_CONTAINERS, *scope.matchers)}[{rng}]))")
    return parts


def pod_facts(scope: Scope, range_s: int) -> dict[str, str]:
    """Parts for the objects query: pod creation time and node (kube-state-metrics), every namespace for the
    node placement (node usage covers all pods on a node), the scope for the creation time."""
    rng = duration(range_s)
    created = selector("kube_pod_created", *scope.namespace_matchers())
    info = selector("kube_pod_info", 'node!=""', *scope.matchers)
    return {"created": f"max by (namespace, pod) (last_over_time({created}[{rng}]))",
            "placed": f"max by (namespace, pod, node) (max_over_time({info}[{rng}]))"}
