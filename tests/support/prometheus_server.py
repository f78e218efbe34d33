"""A real Prometheus on loopback with backfilled history, plus broken servers for failure tests.

``PrometheusServer`` backfills a TSDB with ``promtool tsdb create-blocks-from
openmetrics`` and starts Debian's ``prometheus`` on it, on a free loopback
port, with no scrape targets and a retention long enough to keep the blocks.
Backfilled blocks must not overlap the head block, so histories should end
at least ~3 hours before now (``history_end()`` does that).

``SilentServer`` accepts TCP connections and never answers (a hung
Prometheus); ``closed_port_url()`` gives a URL where nothing listens.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from tests.support import tsdb_cache

INSTALL_HINT = "run tests/tools/install-prometheus.sh (installs Debian's prometheus and promtool)"


def require_binaries() -> tuple[str, str]:
    """Paths of ``prometheus`` and ``promtool``; raises RuntimeError with the install hint if missing."""
    found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    missing = [name for name, path in found.items() if not path]
    if missing:
        raise RuntimeError(f"{' and '.join(missing)} not found on PATH: {INSTALL_HINT}")
    return found["prometheus"], found["promtool"]  # type: ignore[return-value]


def binaries_or_fail() -> None:
    """In a fixture: fail the test (not skip it) with the install hint when prometheus/promtool are missing."""
    import pytest
    try:
        require_binaries()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def history_end(now: float | None = None, *, align: int = 3600) -> int:
    """A sample end time safely older than the head block: now - 3h, aligned down to ``align``."""
    now = time.time() if now is None else now
    return int(now - 3 * 3600) // align * align


def budget_start_date(now: float | None = None) -> str:
    """A Budget ``spec.startDate`` (YYYY-MM-DD, day 1-28) whose Monthly UTC period holds now and at least the
    whole previous day, so a backfilled history (it ends ``history_end()``, hours before now) has spend in
    the current period at any hour, the first hours of a month included (a plain calendar month would
    have none of it then)."""
    day = datetime.fromtimestamp(time.time() if now is None else now, UTC).date() - timedelta(days=1)
    while day.day > 28:
        day -= timedelta(days=1)
    return day.isoformat()


class PrometheusServer:
    """One Prometheus process serving a backfilled TSDB under ``workdir``."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.tsdb = self.workdir / "tsdb"
        self.tsdb.mkdir(parents=True, exist_ok=True)
        self.prometheus, self.promtool = require_binaries()
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log = self.workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def backfill(self, openmetrics: Path, *, max_block_duration: str = "24h", timeout: float = 600) -> None:
        """Turn an OpenMetrics file into TSDB blocks (fails with promtool's own message); benchmarks of
        gigabytes of history pass a longer ``timeout``."""
        self._create_blocks(openmetrics, self.tsdb, max_block_duration, timeout)

    def backfill_cached(self, openmetrics: Path, *, max_block_duration: str = "24h") -> None:
        """``backfill``, with the blocks kept by the file's content hash (``tsdb_cache``): the fixtures'
        histories are backfilled once per content, then copied. For test-sized files: hashing reads
        the whole file, so benchmarks of gigabytes call ``backfill``."""
        tsdb_cache.restore_or_build(
            openmetrics, self.tsdb, lambda out: self._create_blocks(openmetrics, out, max_block_duration, 600),
            max_block_duration, tsdb_cache.tool_identity(self.promtool))

    def _create_blocks(self, openmetrics: Path, out: Path, max_block_duration: str, timeout: float) -> None:
        run = subprocess.run([self.promtool, "tsdb", "create-blocks-from", "openmetrics",
                              f"--max-block-duration={max_block_duration}", str(openmetrics), str(out)],
                             capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0:
            raise RuntimeError(f"promtool backfill of {openmetrics} failed (exit {run.returncode}):\n"
                               f"{run.stdout[-2000:]}\n{run.stderr[-2000:]}")

    def backfill_rules(self, rules: Path, start: int, end: int, *, timeout: float = 600) -> None:
        """Record ``rules`` over [start, end] from this running server's data (``promtool tsdb
        create-blocks-from rules``), then restart it on the TSDB holding the recorded blocks too."""
        out = self.workdir / "rule-blocks"
        # Prometheus offsets a group's evaluations by a hash of its file path and name: the file is copied
        # and named relatively, so the recorded phase is the same from any checkout (tests compare it).
        shutil.copyfile(rules, self.workdir / "rules.yaml")
        run = subprocess.run([self.promtool, "tsdb", "create-blocks-from", "rules", f"--url={self.url}",
                              f"--start={start}", f"--end={end}", f"--output-dir={out}", "--quiet", "rules.yaml"],
                             capture_output=True, text=True, timeout=timeout, cwd=self.workdir)
        if run.returncode != 0:
            raise RuntimeError(f"promtool rules backfill of {rules} failed (exit {run.returncode}):\n"
                               f"{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
        self.stop()
        for block in out.iterdir():
            block.rename(self.tsdb / block.name)
        self.start()

    def start(self, *, timeout: float = 60, max_samples: int = 200_000_000) -> "PrometheusServer":
        """Start on a free loopback port and wait for ``/-/ready`` (``max_samples``: ``--query.max-samples``,
        the most samples one query may load)."""
        config = self.workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\nscrape_configs: []\n")
        self.port = free_port()
        log = self.log.open("w")
        self.process = subprocess.Popen(
            [self.prometheus, f"--config.file={config}", f"--storage.tsdb.path={self.tsdb}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=3650d",
             f"--query.max-samples={max_samples}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus not ready on {self.url} within {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


class SilentServer:
    """Accepts connections on loopback and never sends a byte (a hung server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            self._conns.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self.sock.close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}"


class AuthProxy:
    """A loopback reverse proxy that demands headers, like Thanos/Mimir behind an auth gateway.

    Requests without every header in ``required`` (exact values) get 401;
    others are forwarded to ``upstream`` unchanged: GETs, and the remote-read POST
    unless ``remote_read`` is False (then 404, as Thanos Query or VictoriaMetrics
    answer). ``seen`` keeps the headers (and path) of each request, so tests can
    check what the client sent.
    """

    def __init__(self, upstream: str, required: dict[str, str], *, remote_read: bool = True):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        proxy = self
        self.upstream, self.required, self.seen = upstream.rstrip("/"), required, []
        self.remote_read = remote_read

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:   # noqa: N802
                self._forward(lambda: requests.get(proxy.upstream + self.path, timeout=30))

            def do_POST(self) -> None:   # noqa: N802
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not proxy.remote_read or not self.path.startswith("/api/v1/read"):
                    self._forward(None)
                    return
                forwarded = {k: self.headers[k] for k in ("Content-Encoding", "Content-Type",
                                                          "X-Prometheus-Remote-Read-Version") if k in self.headers}
                self._forward(lambda: requests.post(proxy.upstream + self.path, data=data, headers=forwarded,
                                                    timeout=30))

            def _forward(self, send) -> None:
                proxy.seen.append({**dict(self.headers), ":path": self.path, ":method": self.command})
                kind, encoding = "application/json", None
                if any(self.headers.get(k) != v for k, v in proxy.required.items()):
                    body = b'{"status":"error","errorType":"unauthorized","error":"missing or wrong credentials"}'
                    self.send_response(401)
                elif send is None:
                    body = b"404 page not found"
                    self.send_response(404)
                else:
                    answer = send()
                    body, kind = answer.content, answer.headers.get("Content-Type", kind)
                    # requests decodes gzip itself; snappy (remote read) it passes through as it came
                    encoding = answer.headers.get("Content-Encoding") if answer.headers.get(
                        "Content-Encoding") == "snappy" else None
                    self.send_response(answer.status_code)
                self.send_header("Content-Type", kind)
                if encoding:
                    self.send_header("Content-Encoding", encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_simulation(sim, workdir: Path, *, what: str = "the simulator", **openmetrics) -> PrometheusServer:
    """A started Prometheus holding a simulation's history (OpenMetrics -> promtool -> TSDB).

    Fails the calling test (never skips) with the reason when prometheus/promtool are
    missing or the server does not come up. ``openmetrics`` goes to ``write_openmetrics_file``.
    """
    import pytest

    from finops_operator.simulator.openmetrics import write_openmetrics_file

    binaries_or_fail()
    om = workdir / "history.om"
    write_openmetrics_file(sim, om, **openmetrics)
    server = PrometheusServer(workdir)
    try:
        server.backfill_cached(om)
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start a Prometheus backfilled from {what}: {exc}", pytrace=False)
    return server


class TlsProxy:
    """A loopback HTTPS reverse proxy to ``upstream`` with the serving ``cert``/``key``; with ``client_ca``
    it demands a client certificate signed by it (mutual TLS, as a gateway in front of Thanos or Mimir)."""

    def __init__(self, upstream: str, cert: Path, key: Path, client_ca: Path | None = None):
        import ssl
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        target = upstream.rstrip("/")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:   # noqa: N802
                answer = requests.get(target + self.path, timeout=30)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(str(client_ca))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
