"""Fixtures: moto in server mode on loopback, behind a small recording proxy.

boto3 talks HTTP to ``aws_endpoint.url``. The proxy forwards every request
unchanged to a ``moto.server.ThreadedMotoServer`` on 127.0.0.1 and adds three
things moto cannot do by itself, in AWS's own wire format:

* **throttling**: ``throttle("DescribeVolumes", 2)`` answers the next two
  such requests the way AWS does when it throttles: the EC2 query protocol gets
  HTTP 503 with ``<Response><Errors><Error><Code>RequestLimitExceeded</Code>``,
  JSON-protocol services (Cost Explorer) HTTP 400 with
  ``{"__type": "ThrottlingException", "message": "Rate exceeded"}``. botocore
  therefore retries exactly as it would against AWS.
* **a request log** (``actions``), so tests can count what reached "AWS"
  (for example that a cache hit sent nothing).

Canned Cost Explorer results go to moto's own
``/moto-api/static/ce/cost-and-usage-results`` (``set_cost_and_usage``).
"""
from __future__ import annotations

import http.client
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import boto3
import pytest
import requests

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


class _Handler(BaseHTTPRequestHandler):
    server: "AwsProxy"
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:     # keep test output quiet
        pass

    def do_POST(self) -> None:   # noqa: N802 (http.server naming)
        self._handle()

    def do_GET(self) -> None:    # noqa: N802
        self._handle()

    def do_PUT(self) -> None:    # noqa: N802 (S3: buckets and objects)
        self._handle()

    def do_DELETE(self) -> None:    # noqa: N802
        self._handle()

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        action, json_protocol = self._action(body)
        proxy = self.server
        with proxy.lock:
            proxy.actions.append(action)
            proxy.bodies.append((action, body))
            throttled = proxy.throttles.get(action, 0) > 0
            if throttled:
                proxy.throttles[action] -= 1
        if throttled:
            return self._throttle(json_protocol)
        self._forward(body)

    def _action(self, body: bytes) -> tuple[str, bool]:
        target = self.headers.get("X-Amz-Target")
        if target:
            return target.rsplit(".", 1)[-1], True
        form = parse_qs(body.decode(errors="replace"))
        return (form.get("Action") or [self.path])[0], False

    def _throttle(self, json_protocol: bool) -> None:
        request_id = str(uuid.uuid4())
        if json_protocol:
            payload = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            return self._send(400, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id},
                              payload)
        payload = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded'
                   '</Code><Message>Request limit exceeded.</Message></Error></Errors>'
                   f'<RequestID>{request_id}</RequestID></Response>').encode()
        return self._send(503, {"Content-Type": "text/xml;charset=UTF-8"}, payload)

    def _forward(self, body: bytes) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.moto_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            payload = answer.read()
            kept = {k: v for k, v in answer.getheaders() if k.lower() not in HOP_HEADERS}
            self._send(answer.status, kept, payload)
        finally:
            conn.close()

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class AwsProxy(ThreadingHTTPServer):
    """Loopback proxy in front of moto: throttling on demand, a request log."""

    daemon_threads = True

    def __init__(self, moto_port: int):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.moto_port = moto_port
        self.lock = threading.Lock()
        self.actions: list[str] = []
        self.bodies: list[tuple[str, bytes]] = []
        self.throttles: dict[str, int] = {}
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def throttle(self, action: str, times: int) -> None:
        """Answer the next ``times`` requests for ``action`` with AWS's throttling error."""
        with self.lock:
            self.throttles[action] = times

    def set_cost_and_usage(self, results: list[dict]) -> None:
        """Queue GetCostAndUsage answers in moto (one per distinct request, in order)."""
        answer = requests.post(f"{self.moto_url}/moto-api/static/ce/cost-and-usage-results",
                               json={"results": results}, timeout=10)
        assert answer.status_code == 201, answer.text

    def set_athena_results(self, results: list[dict], region: str) -> None:
        """Queue Athena query results in moto (``rows`` + ``column_info``, taken one per new query id)."""
        answer = requests.post(f"{self.moto_url}/moto-api/static/athena/query-results",
                               json={"region": region, "results": results}, timeout=10)
        assert answer.status_code == 201, answer.text

    def hold_athena_queries(self, polls: int) -> None:
        """Keep new Athena queries RUNNING for ``polls`` GetQueryExecution calls (moto's state manager)."""
        requests.post(f"{self.moto_url}/moto-api/state-manager/set-transition", timeout=10, json={
            "model_name": "athena::execution", "transition": {"progression": "manual", "times": polls}},
        ).raise_for_status()

    def reset(self) -> None:
        """Forget moto's state and the proxy's rules and log."""
        requests.post(f"{self.moto_url}/moto-api/reset", timeout=10).raise_for_status()
        requests.post(f"{self.moto_url}/moto-api/state-manager/unset-transition", timeout=10,
                      json={"model_name": "athena::execution"}).raise_for_status()
        with self.lock:
            self.actions.clear()
            self.bodies.clear()
            self.throttles.clear()

    def count(self, action: str) -> int:
        with self.lock:
            return self.actions.count(action)

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="session")
def _moto_proxy():
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.fail(f"moto server mode is not installed ({exc}): pip install 'moto[server]'", pytrace=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    proxy = AwsProxy(port)
    yield proxy
    proxy.close()
    server.stop()


@pytest.fixture
def aws_endpoint(_moto_proxy) -> AwsProxy:
    """A clean moto (server mode, loopback) behind the throttling/recording proxy."""
    _moto_proxy.reset()
    return _moto_proxy


@pytest.fixture
def aws_session() -> boto3.Session:
    """Static fake credentials (moto accepts any); never the developer's real ones."""
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")
