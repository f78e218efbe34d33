"""Prometheus adapter: container utilization for a whole scope in a fixed number of requests.

Usage::

    source = PrometheusSource("http://prometheus:9090", bearer_token=None)
    result = source.collect(Scope(namespaces="payments|shop"), window, percentiles={"cpu": {95}, "memory": {99}})
    result.usage[ContainerKey(WorkloadRef("Deployment", "shop", "web"), "app")].cpu.percentile(95)
    result.queries          # HTTP requests this scan made
    result.rules            # whether the recording rules were read

The same code talks to Thanos, Mimir or VictoriaMetrics: it only uses the
plain ``/api/v1/query`` and ``/api/v1/query_range`` endpoints, with an
optional bearer token, extra headers (e.g. ``X-Scope-OrgID``), a CA bundle or
``verify_tls=False``, and a client certificate.

A scan (:mod:`.promscan`) sends a fixed number of requests (20 with the default
policy, 23-24 when the scope is narrower than the cluster: node usage then
needs every namespace's pods; fewer over remote read), whatever the number of containers and the
window length: one per statistic, each aggregating over the whole scope, with
the statistics computed on the server, per bucket (:mod:`.promusage`), from
the recording rules when the server has them; they are sent a few at a time
so Prometheus evaluates them on several cores. The samples of the recorded
series, or of the raw CPU counter, may come over the remote-read API instead
(:meth:`PrometheusSource.read_raw`, :mod:`.promremote`).

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from ..errors import ConfigError, DataSourceError, DataSourceRefused
from ..models import HPA, Container, ContainerKey, ContainerUsage, UsageStats, Window, WorkloadRef
from ..scrub import redact_url, scrub
from ..settings import TimeWindow
from .promql import Scope
from .promstats import parse_bundle

log = logging.getLogger(__name__)
MAX_REQUESTS_PER_SCAN = 1000           # a usage scan: 10-24; an hourly allocation read of 90 days in day chunks: 458
RULE_MODES = ("Auto", "Require", "Off")
REMOTE_READ_MODES = ("Auto", "Off")
REMOTE_READ_MAX_BYTES = 256 * 2**20     # a remote-read answer, compressed or not: ~14 M samples at 18 bytes
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
    most recently seen pod). ``rules`` says whether the recording rules were
    read; ``chunks`` how many time slices the range queries needed (1 unless the
    server's sample limit forced more).
    """

    window: Window
    usage: dict[ContainerKey, ContainerUsage] = field(default_factory=dict)
    containers: dict[ContainerKey, Container] = field(default_factory=dict)
    hpas: dict[WorkloadRef, HPA] = field(default_factory=dict)
    nodes: dict[str, NodeUsage] = field(default_factory=dict)
    pods: dict[tuple[str, str], WorkloadRef] = field(default_factory=dict)
    queries: int = 0
    chunks: int = 1
    rules: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)     # what the scan could not do exactly, and why


def _snappy_length(data: bytes) -> int:
    """The decompressed length a snappy block starts with (a varint)."""
    value = 0
    for shift, byte in zip(range(0, 35, 7), data[:5]):
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
    raise ValueError("not a snappy block")


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
                 max_requests: int = MAX_REQUESTS_PER_SCAN, recording_rules: str = "Auto",
                 remote_read: str = "Auto"):
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
        if recording_rules not in RULE_MODES:
            raise ConfigError(f"recordingRules {recording_rules!r} is not one of {', '.join(RULE_MODES)}",
                              field="prometheus.recordingRules")
        self.recording_rules = recording_rules
        if remote_read not in REMOTE_READ_MODES:
            raise ConfigError(f"remoteRead {remote_read!r} is not one of {', '.join(REMOTE_READ_MODES)}",
                              field="prometheus.remoteRead")
        self.remote_read = remote_read
        self.remote_read_served: bool | None = None     # learnt from the first attempt (None: not tried yet)
        self._stop_at: int | None = None        # hard stop for the scan in progress (requests counter value)
        self._planned = 0
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
        self._planned = planned
        try:
            yield
        finally:
            self._stop_at = None

    def extend_budget(self, more: int, what: str) -> None:
        """Allow ``more`` requests in the run in progress (time slices the server's limits force), within
        ``max_requests``."""
        with self._lock:
            if self._stop_at is None:
                return
            if self._planned + more > self.max_requests:
                raise ConfigError(f"{what} would need {self._planned + more} requests, over the budget of "
                                  f"{self.max_requests} per scan; raise the server's query.max-samples or load "
                                  "the recording rules", source=self.where, field="window")
            self._planned += more
            self._stop_at += more * self.retries

    def query(self, expr: str, at: int) -> list[dict]:
        """One instant query at epoch second ``at`` (see :meth:`_request` for retries and errors)."""
        return self._request(expr, lambda: self._client.custom_query(expr, params={"time": at}))

    def query_range(self, expr: str, start: int, end: int, step: int) -> list[dict]:
        """One range query over [start, end] at ``step`` seconds."""
        return self._request(expr, lambda: self._client.custom_query_range(
            expr, datetime.fromtimestamp(start, timezone.utc), datetime.fromtimestamp(end, timezone.utc), f"{step}s"))

    def read_raw(self, matchers: list[tuple[int, str, str]], start_ms: int, end_ms: int) -> memoryview:
        """One remote-read request (``POST /api/v1/read``, SAMPLES): the decompressed ReadResponse.

        Counted and retried like a query. Refused (DataSourceRefused, not retried) when the server does
        not serve the endpoint (4xx, e.g. Thanos Query or VictoriaMetrics) or its answer is larger than
        :data:`REMOTE_READ_MAX_BYTES` compressed or decompressed, so the caller falls back to PromQL.
        """
        import cramjam
        from .promremote import encode_request
        body = bytes(cramjam.snappy.compress_raw(encode_request(start_ms, end_ms, matchers)))
        client = self._client
        headers = {**(client.headers or {}), "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                   "X-Prometheus-Remote-Read-Version": "0.1.0"}

        def send() -> bytes:
            with client._session.post(f"{self.url}/api/v1/read", data=body, headers=headers, stream=True,
                                      verify=client._session.verify, cert=client._session.cert,
                                      timeout=self.timeout) as answer:
                if answer.status_code != 200:
                    raise PrometheusApiClientException(
                        f"HTTP Status Code {answer.status_code} ({answer.raw.read(300, decode_content=True)!r})")
                data = answer.raw.read(REMOTE_READ_MAX_BYTES + 1, decode_content=False)
            if len(data) > REMOTE_READ_MAX_BYTES:
                raise DataSourceRefused(f"the remote-read answer is over {REMOTE_READ_MAX_BYTES >> 20} MiB",
                                        source=self.where, field="remoteRead")
            try:
                size = _snappy_length(data)
                if size > REMOTE_READ_MAX_BYTES:
                    raise DataSourceRefused(f"the remote-read answer would be {size >> 20} MiB, over "
                                            f"{REMOTE_READ_MAX_BYTES >> 20} MiB", source=self.where,
                                            field="remoteRead")
                return memoryview(cramjam.snappy.decompress_raw(data))     # no copy of the answer
            except (cramjam.DecompressionError, ValueError) as exc:
                raise DataSourceRefused(f"the remote-read answer is not snappy data ({self._answer(exc)})",
                                        source=self.where, field="remoteRead") from None

        return self._request("remote read", send)

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
                raise DataSourceRefused(f"TLS failed ({self._answer(exc)}); set tls.caSecretRef to the CA that signed "
                                        "the server certificate, or tls.clientCertSecretRef when it asks for one",
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

    def bundle(self, expr: str, at: int) -> dict[str, list]:
        """An instant query whose answer is a bundle (:func:`.promql.bundle`), split by its ``stat`` label."""
        return parse_bundle(self.query(expr, at), source=self.where)

    # ------------------------------------------------------------------ scan

    def collect(self, scope: Scope, window: Window, *, percentiles: Mapping[str, Iterable[int]] | None = None,
                time_windows: Mapping[str, TimeWindow | None] | None = None, rate_window_s: int | None = None,
                allow_empty: bool = False) -> UsageResult:
        """Read usage, container facts, owners, HPAs and nodes for every container in ``scope``.

        ``percentiles`` are the integer window percentiles (50..99) to compute per resource
        (``stats.needed_percentiles(settings)``; by default a default policy's); ``time_windows`` the
        right-sizers' business hours per resource. The raw CPU rate window defaults to
        max(step, 4 x scrape interval). Raises DataSourceError when the server fails or (unless
        ``allow_empty``) when the scope has no CPU series; ConfigError when ``recording_rules`` is
        Require and the server lacks them.
        """
        from ..usage import default_percentiles
        from .promscan import ScanRequest, scan
        wanted = percentiles if percentiles is not None else default_percentiles()
        request = ScanRequest(
            scope=scope, window=align_window(window),
            percentiles={name: tuple(sorted({int(q) for q in wanted.get(name, ()) if int(q) < 100}))
                         for name in ("cpu", "memory")},
            time_windows=dict(time_windows or {}),
            rate_s=rate_window_s or max(window.step_seconds, 4 * self.scrape_interval),
            rules=self.recording_rules, allow_empty=allow_empty)
        return scan(self, request)
