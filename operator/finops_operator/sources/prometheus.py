"""Prometheus adapter: container utilization for a whole scope in a fixed number of requests.

Usage::

    source = PrometheusSource("http://prometheus:9090", bearer_token=None)
    result = source.collect(Scope(namespaces="payments|shop"), window)
    result.usage[ContainerKey(WorkloadRef("Deployment", "shop", "web"), "app")].cpu.percentile(95)
    result.queries          # HTTP requests this scan made

The same code talks to Thanos, Mimir or VictoriaMetrics: it only uses the
plain ``/api/v1/query`` endpoint, with an optional bearer token, extra headers
(e.g. ``X-Scope-OrgID``), a CA bundle or ``verify_tls=False``, and a client
certificate.

Requests per scan = 5 per chunk + 3 (a probe, HPA specs, node info), whatever
the number of containers: every query aggregates over the whole scope, and the
statistics are computed on the server (see :mod:`.promql`). Long windows are
split into chunks of at most ``chunk`` to bound the samples one query loads;
:mod:`.promstats` documents how chunks and replicas are merged.

Failures are never data: an unreachable server, a timeout after the retries,
an error answer or a scope without any cAdvisor series raise
:class:`DataSourceError` naming the URL and the reason, so no finding is made
from missing data.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator
from urllib.parse import urlsplit

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from ..errors import ConfigError, DataSourceError, DataSourceRefused
from ..models import (HPA, Container, ContainerKey, ContainerUsage, Resources, UsageStats,
                      Window, WorkloadRef)
from ..scrub import redact_url, scrub
from . import promql
from .promql import Scope
from .promstats import (Owners, PodKey, by_pod, combine_chunks, hpas_from, merge_replicas, parse_bundle,
                        series_stats, stats_by_key)

log = logging.getLogger(__name__)
REQUESTS_PER_CHUNK = 5
REQUESTS_PER_SCAN = 3                  # the probe, HPA specs, node info
MAX_REQUESTS_PER_SCAN = 1000           # a 90-day window in one-day chunks needs 458
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")      # an RFC 9110 token
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_headers(headers: dict[str, object] | None, *, source: str | None = None,
                  field: str = "headers") -> dict[str, str]:
    """Extra request headers, refused at parse time when they could not be sent as written.

    A name must be an HTTP token and a value must hold no control characters
    (CR/LF would split the request); Authorization belongs in a Secret.
    """
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        where = f"{field}.{name}"
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ConfigError(f"header name {name!r} is not an HTTP token (letters, digits and !#$%&'*+.^_`|~-)",
                              source=source, field=where)
        if name.lower() == "authorization":
            raise ConfigError("headers must not carry Authorization; use bearerTokenSecretRef", source=source,
                              field=where)
        if not isinstance(value, str) or _CONTROL.search(value):
            raise ConfigError("header values must be text without control characters (no CR, LF or tab)",
                              source=source, field=where)
        out[name] = value
    return out


def _extra_quantiles(percentile: int) -> tuple[int, ...]:
    """The policy percentile when the standard statistics do not hold it (100 is the max)."""
    standard = {round(q * 100) for q in promql.STANDARD_QUANTILES.values()} | {100}
    return () if percentile in standard else (percentile,)


def planned_requests(chunks: int) -> int:
    """HTTP requests one scan of ``chunks`` chunks sends when no attempt is retried."""
    return REQUESTS_PER_CHUNK * chunks + REQUESTS_PER_SCAN


MAX_ANSWER = 300   # characters of a server answer kept in an error (status, Events)


@dataclass(slots=True)
class NodeUsage:
    """A node as Prometheus sees it: allocatable, labels and whole-node usage over the window."""

    name: str
    allocatable_cpu: float | None = None
    allocatable_memory: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    cpu: UsageStats | None = None
    memory: UsageStats | None = None


@dataclass(slots=True)
class UsageResult:
    """Everything one scan read. ``usage`` and ``containers`` are keyed by workload container.

    ``containers`` carries restarts, OOM kills (pod containers seen OOMKilled: a
    lower bound of the kill count) and the current requests/limits (from the
    most recently seen pod). The usage statistics hold the standard quantiles
    (``promql.STANDARD_QUANTILES``) and the policy percentiles the caller asked for.
    """

    window: Window
    usage: dict[ContainerKey, ContainerUsage] = field(default_factory=dict)
    containers: dict[ContainerKey, Container] = field(default_factory=dict)
    hpas: dict[WorkloadRef, HPA] = field(default_factory=dict)
    nodes: dict[str, NodeUsage] = field(default_factory=dict)
    pods: dict[tuple[str, str], WorkloadRef] = field(default_factory=dict)
    queries: int = 0
    chunks: int = 0
    seconds: float = 0.0


def align_window(window: Window) -> Window:
    """Snap start/end down to multiples of the step (subquery steps are epoch-aligned)."""
    step = window.step_seconds
    if step <= 0:
        raise ConfigError(f"step must be a positive number of seconds, got {step}", field="window.step_seconds")
    start = int(window.start.timestamp()) // step * step
    end = int(window.end.timestamp()) // step * step
    if end <= start:
        raise ConfigError(f"window end {window.end.isoformat()} is not after start {window.start.isoformat()} "
                          f"(at a {step}s step)", field="window")
    return Window(datetime.fromtimestamp(start, tz=timezone.utc), datetime.fromtimestamp(end, tz=timezone.utc), step)


def split_window(window: Window, chunk: timedelta) -> list[tuple[int, int]]:
    """Chunks ``(start, end)`` in epoch seconds, inclusive, step-aligned, that tile the window without overlap."""
    step = window.step_seconds
    start, end = int(window.start.timestamp()), int(window.end.timestamp())
    per_chunk = max(1, int(chunk.total_seconds()) // step)   # steps per chunk
    out = []
    while start <= end:
        stop = min(end, start + (per_chunk - 1) * step)
        out.append((start, stop))
        start = stop + step
    return out


class PrometheusSource:
    """Batched utilization reader over the Prometheus HTTP API (prometheus-api-client)."""

    def __init__(self, url: str, *, bearer_token: str | None = None, headers: dict[str, str] | None = None,
                 verify_tls: bool | str = True, client_cert: str | tuple[str, str] | None = None,
                 timeout: float = 30, retries: int = 3, backoff: float = 0.5,
                 chunk: timedelta = timedelta(days=1), scrape_interval: int = 30, parallel: int = 3,
                 max_requests: int = MAX_REQUESTS_PER_SCAN):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{redact_url(url)!r} is not an http(s) URL; write e.g. "
                              "'http://prometheus-k8s.monitoring:9090'", field="prometheus.url")
        self.url = url.rstrip("/")
        self.where = redact_url(self.url)    # what errors show: no user-info, no query values
        self._secrets = [bearer_token, *(headers or {}).values(), urlsplit(self.url).password]
        self.timeout = timeout
        self.retries = max(1, retries)
        self.backoff = backoff
        self.chunk = chunk
        self.scrape_interval = scrape_interval
        self.requests = 0
        self.parallel = max(1, parallel)
        self.max_requests = max_requests
        self._stop_at: int | None = None        # hard stop for the scan in progress (requests counter value)
        self._lock = threading.Lock()
        all_headers = check_headers(headers, source=self.where)
        if bearer_token:
            all_headers["Authorization"] = f"Bearer {bearer_token}"
        session = requests.Session()
        session.verify = verify_tls
        session.cert = client_cert
        # Retries are ours (counted, with backoff, and reported); urllib3's are turned off.
        self._client = PrometheusConnect(url=self.url, headers=all_headers, session=session,
                                         retry=Retry(total=0, read=False), timeout=timeout)

    # ------------------------------------------------------------------ HTTP

    @contextmanager
    def budget(self, planned: int, what: str) -> Iterator[None]:
        """Bound one run (a scan, an allocation read) to ``planned`` requests, retries included.

        Refused before any request when ``planned`` exceeds ``max_requests``;
        while it runs, :meth:`_request` stops at ``planned x retries`` attempts.
        """
        if planned > self.max_requests:
            raise ConfigError(f"{what} needs {planned} requests, over the budget of {self.max_requests} per scan; "
                              "shorten the history window (at most 90 days)", source=self.where, field="window")
        self._stop_at = self.requests + planned * self.retries
        try:
            yield
        finally:
            self._stop_at = None

    def query(self, expr: str, at: int) -> list[dict]:
        """One instant query at epoch second ``at`` (see :meth:`_request` for retries and errors)."""
        return self._request(expr, lambda: self._client.custom_query(expr, params={"time": at}))

    def query_range(self, expr: str, start: int, end: int, step: int) -> list[dict]:
        """One range query over [start, end] at ``step`` seconds."""
        return self._request(expr, lambda: self._client.custom_query_range(
            expr, datetime.fromtimestamp(start, timezone.utc), datetime.fromtimestamp(end, timezone.utc), f"{step}s"))

    def _request(self, expr: str, send: Callable[[], list[dict]]) -> list[dict]:
        """Send with retries (exponential backoff) on timeouts, refused connections and 429/5xx.

        Every attempt counts in ``requests``. A query the server rejects (4xx)
        is not retried. Exhausted retries raise DataSourceError naming the URL.
        """
        last_reason = "no attempt made"
        for attempt in range(1, self.retries + 1):
            with self._lock:
                if self._stop_at is not None and self.requests >= self._stop_at:
                    raise ConfigError(f"the scan used up its budget of {self._stop_at} requests (retries "
                                      "included); shorten the history window", source=self.where, field="window")
                self.requests += 1
            try:
                return send()
            except PrometheusApiClientException as exc:
                text = str(exc)
                if not any(f"Code {code}" in text for code in (429, 500, 502, 503, 504)):
                    raise DataSourceRefused(f"query rejected: {self._answer(text)}", source=self.where,
                                          field=expr[:120]) from None
                last_reason = self._answer(text)
            except requests.Timeout:
                last_reason = f"no answer within {self.timeout}s (timeout)"
            except requests.exceptions.SSLError as exc:
                raise DataSourceRefused(f"TLS failed ({self._answer(exc)}); set verifyTLS to a CA bundle path",
                                        source=self.where) from None
            except requests.ConnectionError as exc:
                reason = getattr(exc.args[0], "reason", None) if exc.args else None
                last_reason = f"cannot connect ({self._answer(reason or exc)})"
            except (ValueError, KeyError, TypeError) as exc:   # a non-Prometheus answer
                raise DataSourceRefused(f"answer is not Prometheus JSON ({self._answer(repr(exc))}); is this the "
                                        "right URL?", source=self.where) from None
            if attempt < self.retries:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise DataSourceError(f"Prometheus unavailable after {self.retries} attempts: {last_reason}",
                              source=self.where)

    def _answer(self, text: object) -> str:
        """What the server (or the connection) said, fit for status and Events: scrubbed and short."""
        return scrub(text, self._secrets, limit=MAX_ANSWER)

    def _bundle(self, expr: str, at: int) -> dict[str, list]:
        return parse_bundle(self.query(expr, at), source=self.where)

    # ------------------------------------------------------------------ scan

    def collect(self, scope: Scope, window: Window, *, cpu_percentile: int = 95, memory_percentile: int = 99,
                rate_window_s: int | None = None, allow_empty: bool = False) -> UsageResult:
        """Read usage, container facts, owners, HPAs and nodes for every container in ``scope``.

        ``cpu_percentile``/``memory_percentile`` outside the standard quantiles and 100 are
        queried as well and land in the usage statistics' ``quantiles``. The CPU rate
        window defaults to max(step, 4 x scrape interval): one step when scrapes
        are frequent (consecutive windows tile time), wide enough for rate() to
        see several samples otherwise. Raises DataSourceError when the server
        fails or (unless ``allow_empty``) when the scope has no CPU series.
        """
        began, before = time.monotonic(), self.requests
        window = align_window(window)
        scan = _Scan(scope, window, rate_window_s or max(window.step_seconds, 4 * self.scrape_interval),
                     {"cpu": _extra_quantiles(cpu_percentile), "memory": _extra_quantiles(memory_percentile)})
        chunks = split_window(window, self.chunk)
        planned = planned_requests(len(chunks))
        with self.budget(planned, f"a {window.end - window.start} window in {len(chunks)} chunks of {self.chunk}"):
            hpas, node_info = self._send(scan, chunks)
        if not scan.pod_stats["cpu"] and not allow_empty:
            raise DataSourceError(
                f"no container_cpu_usage_seconds_total series for namespaces =~ {scope.namespaces!r} between "
                f"{window.start.isoformat()} and {window.end.isoformat()}; check the scope and that cAdvisor is "
                "scraped (no findings are made without data)", source=self.where)
        result = UsageResult(window=window, hpas=hpas, chunks=len(chunks))
        self._assemble_usage(result, scan.pod_stats, scan.owners)
        self._assemble_facts(result, scan.facts, scan.pod_stats)
        self._assemble_nodes(result, scan.node_series, node_info)
        result.queries = self.requests - before
        result.seconds = time.monotonic() - began
        log.info("prometheus scan: %d containers, %d nodes, %d requests, %d chunks, %.1fs", len(result.usage),
                 len(result.nodes), result.queries, result.chunks, result.seconds)
        return result

    def _send(self, scan: "_Scan", chunks: list[tuple[int, int]]) -> tuple[dict[WorkloadRef, HPA], dict[str, list]]:
        """The requests of one scan: a probe, the chunks, then HPA specs and node info at the window's end."""
        scope, window = scan.scope, scan.window
        self.query("vector(1)", chunks[-1][1])   # probe: a down or hung server fails here, before any fan-out
        for start, end in chunks:
            self._read_chunk(scan, start, end)
        start, end = chunks[-1]
        hpas = hpas_from(self._bundle(promql.hpa_specs(scope, end - start + window.step_seconds), end))
        node_info = self._bundle(promql.node_info(scope, int((window.end - window.start).total_seconds())
                                                  + window.step_seconds), end)
        return hpas, node_info

    def _read_chunk(self, scan: "_Scan", start: int, end: int) -> None:
        """The five requests of one chunk, sent concurrently (``parallel``) since the server evaluates
        queries in parallel: CPU and memory statistics, container facts, owners, node series."""
        step, scope = scan.window.step_seconds, scan.scope
        rng = end - start + step // 2 or 1      # covers [start, end] whether ranges are left-open or closed
        jobs = {
            "cpu": lambda: self._bundle(promql.cpu_usage_stats(scope, rng, step, scan.rate_s, scan.extra["cpu"]), end),
            "memory": lambda: self._bundle(promql.memory_usage_stats(scope, rng, step, scan.extra["memory"]), end),
            "facts": lambda: self._bundle(promql.container_facts(scope, rng), end),
            "owners": lambda: self._bundle(promql.owners(scope, rng), end),
            # Node sums are one range query: the per-step join is evaluated once, statistics are computed here.
            "nodes": lambda: self.query_range(promql.node_usage(scope, scan.rate_s), start, end, step),
        }
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            futures = {name: pool.submit(job) for name, job in jobs.items()}
            answers = {name: future.result() for name, future in futures.items()}   # first error propagates
        for name in ("cpu", "memory"):
            for key, stats in stats_by_key(answers[name], ("namespace", "pod", "container")).items():
                scan.pod_stats[name][key].append(stats)  # type: ignore[index]
        scan.facts.append((end, answers["facts"]))
        scan.owners.add(answers["owners"])
        for item in answers["nodes"]:
            labels = item.get("metric", {})
            series = scan.node_series[labels.get("stat", "")].setdefault(labels.get("node", ""), {})
            series.update({int(float(t)): float(v) for t, v in item.get("values", [])})

    # ------------------------------------------------------------------ assembly (pure)

    @staticmethod
    def _assemble_usage(result: UsageResult, pod_stats: dict, owners: Owners) -> None:
        window = result.window
        step, expected = window.step_seconds, window.expected_points
        grouped: dict[str, dict[ContainerKey, list[dict[str, float]]]] = {"cpu": defaultdict(list),
                                                                           "memory": defaultdict(list)}
        for name in ("cpu", "memory"):
            for (namespace, pod, container), parts in pod_stats[name].items():
                ref = owners.workload_of(namespace, pod)
                result.pods[(namespace, pod)] = ref
                grouped[name][ContainerKey(ref, container)].append(combine_chunks(parts))
        for key in sorted(set(grouped["cpu"]) | set(grouped["memory"])):
            cpu = merge_replicas(grouped["cpu"].get(key, []), expected=expected, step_s=step)
            memory = merge_replicas(grouped["memory"].get(key, []), expected=expected, step_s=step)
            result.usage[key] = ContainerUsage(key=key, cpu=cpu, memory=memory)

    @staticmethod
    def _assemble_facts(result: UsageResult, facts: list[tuple[int, dict[str, list]]], pod_stats: dict) -> None:
        last_seen: dict[PodKey, float] = {}
        for key, parts in list(pod_stats["cpu"].items()) + list(pod_stats["memory"].items()):
            last_seen[key] = max([last_seen.get(key, 0.0)] + [p.get("last", 0.0) for p in parts])
        restarts: dict[ContainerKey, float] = defaultdict(float)
        ooms: dict[ContainerKey, int] = defaultdict(int)
        throttled: dict[ContainerKey, list[float]] = defaultdict(lambda: [0.0, 0.0])
        spec: dict[ContainerKey, dict[str, tuple[float, float]]] = defaultdict(dict)   # field -> (seen, value)

        def key_of(pk: PodKey) -> ContainerKey:
            ref = result.pods.get((pk[0], pk[1])) or WorkloadRef("Pod", pk[0], pk[1])
            return ContainerKey(ref, pk[2])

        for _end, bundle in facts:
            for pk, value in by_pod(bundle.get("restarts", [])).items():
                restarts[key_of(pk)] += value
            for pk, value in by_pod(bundle.get("oom", [])).items():
                ooms[key_of(pk)] += int(value >= 1)
            for i, stat in enumerate(("throttled", "periods")):
                for pk, value in by_pod(bundle.get(stat, [])).items():
                    throttled[key_of(pk)][i] += value
            for stat in ("request", "limit"):
                for labels, value in bundle.get(stat, []):
                    pk = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
                    name = f"{stat}.{labels.get('resource', '')}"
                    seen = (last_seen.get(pk, 0.0), _end)
                    prior = spec[key_of(pk)].get(name)
                    if prior is None or seen >= prior[0]:
                        spec[key_of(pk)][name] = (seen, value)   # the most recently seen pod wins
        for key in result.usage:
            got = {name: value for name, (_, value) in spec.get(key, {}).items()}
            resources = Resources(
                cpu_request=got.get("request.cpu"), cpu_limit=got.get("limit.cpu"),
                memory_request=int(got["request.memory"]) if "request.memory" in got else None,
                memory_limit=int(got["limit.memory"]) if "limit.memory" in got else None)
            result.containers[key] = Container(name=key.container, resources=resources,
                                               restarts=int(round(restarts.get(key, 0.0))), oom_kills=ooms.get(key, 0),
                                               last_terminated_reason="OOMKilled" if ooms.get(key) else None)
            num, den = throttled.get(key, (0.0, 0.0))
            if den > 0:
                result.usage[key].cpu_throttled_ratio = min(1.0, num / den)

    @staticmethod
    def _assemble_nodes(result: UsageResult, node_series: dict, info: dict[str, list]) -> None:
        window = result.window
        nodes: dict[str, NodeUsage] = {}
        for labels, value in info.get("allocatable", []):
            node = nodes.setdefault(labels.get("node", ""), NodeUsage(labels.get("node", "")))
            if labels.get("resource") == "cpu":
                node.allocatable_cpu = value
            elif labels.get("resource") == "memory":
                node.allocatable_memory = int(value)
        for labels, _ in info.get("labels", []):
            node = nodes.setdefault(labels.get("node", ""), NodeUsage(labels.get("node", "")))
            node.labels = {k[len("label_"):]: v for k, v in labels.items() if k.startswith("label_")}
        for name in ("cpu", "memory"):
            for node_name, points in node_series[name].items():
                node = nodes.setdefault(node_name, NodeUsage(node_name))
                setattr(node, name, series_stats(points, window))
        nodes.pop("", None)
        result.nodes = nodes


@dataclass(slots=True)
class _Scan:
    """What the chunks of one scan accumulate."""

    scope: Scope
    window: Window
    rate_s: int
    extra: dict[str, tuple[int, ...]]
    pod_stats: dict[str, dict[PodKey, list[dict[str, float]]]] = field(
        default_factory=lambda: {"cpu": defaultdict(list), "memory": defaultdict(list)})
    facts: list[tuple[int, dict[str, list]]] = field(default_factory=list)
    owners: Owners = field(default_factory=Owners)
    node_series: dict[str, dict[str, dict[int, float]]] = field(
        default_factory=lambda: {"cpu": {}, "memory": {}})
