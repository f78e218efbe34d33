"""The operator's report server: stored FinOpsReports over HTTP (``kubectl port-forward``, the chart's Service).

    GET /reports/<namespace>/<name>/                     the stored reports of a FinOpsReport (HTML list)
    GET /reports/<namespace>/<name>/<date>.html|.json|.md  one report (from its ConfigMap)

Read-only, GET only. Path components are checked before anything is read: a namespace is a DNS label, a
name a DNS subdomain, a date ``YYYY-MM-DD-HHMM``; anything else (traversal, encoded characters, other
paths) is 404. Every answer carries ``Content-Security-Policy: default-src 'none'; style-src
'unsafe-inline'; img-src data:`` (the reports are self-contained: inline CSS and SVG, no script) and
``X-Content-Type-Options: nosniff``. The server runs in a daemon thread beside kopf (``handlers/startup.py``).
"""
from __future__ import annotations

import html
import logging
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import FinOpsError
from ..permissions import Rule
from .reportstore import FORMATS, KEY_PATTERN, ReportStore, StoredReport

log = logging.getLogger(__name__)
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
PATH = re.compile(rf"^/reports/(?P<ns>{_LABEL})/(?P<name>{_SUBDOMAIN})/"
                  r"(?:(?P<key>[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{4})\.(?P<fmt>html|json|md))?$")

PERMISSIONS = (   # RBAC for the calls below (see finops_operator.permissions)
    Rule("cluster", "finops.dev", "finopsreports", ("get",),
         "api/reportserve.py listing: a FinOpsReport's status.reports"),
    Rule("cluster", "", "configmaps", ("get",), "api/reportserve.py: a stored report's ConfigMap"),
)


@dataclass(frozen=True, slots=True)
class Request:
    namespace: str
    name: str
    key: str | None = None       # None: the listing
    fmt: str | None = None


def parse_path(path: str) -> Request | None:
    """The request a path names, or None (404) for anything that is not exactly a report path."""
    path = path.split("?", 1)[0]
    found = PATH.fullmatch(path)
    if found is None or len(found["name"]) > 253 or (found["key"] and not KEY_PATTERN.match(found["key"])):
        return None
    return Request(found["ns"], found["name"], found["key"], found["fmt"])


def listing(namespace: str, name: str, entries: list[StoredReport]) -> str:
    rows = "".join(
        f"<li><a href=\"{html.escape(e.date)}.html\">{html.escape(e.date)}</a> {html.escape(e.period)} "
        f"(<a href=\"{html.escape(e.date)}.json\">json</a>, <a href=\"{html.escape(e.date)}.md\">markdown</a>)</li>"
        for e in entries)
    title = html.escape(f"FinOpsReport {namespace}/{name}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
            f"<h1>{title}</h1><ul>{rows or '<li>no reports stored yet</li>'}</ul></body></html>")


class Reports:
    """What the HTTP handler asks: (status, content type, body) for a path."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client
        self.store = ReportStore(api_client)

    def answer(self, path: str) -> tuple[int, str, bytes]:
        request = parse_path(path)
        if request is None:
            return 404, "text/plain; charset=utf-8", b"not found\n"
        try:
            if request.key is None:
                entries = self._entries(request.namespace, request.name)
                if entries is None:
                    return 404, "text/plain; charset=utf-8", b"no such FinOpsReport\n"
                return 200, FORMATS["html"][1], listing(request.namespace, request.name, entries).encode()
            body = self.store.read(request.namespace, request.name, request.key, request.fmt or "html")
        except FinOpsError as exc:
            log.warning("report server: %s", exc)
            return 503, "text/plain; charset=utf-8", b"the report store cannot be read now\n"
        if body is None:
            return 404, "text/plain; charset=utf-8", b"no such report\n"
        return 200, FORMATS[request.fmt or "html"][1], body

    def _entries(self, namespace: str, name: str) -> list[StoredReport] | None:
        import kubernetes
        api = kubernetes.client.CustomObjectsApi(self.api_client)
        try:
            body = api.get_namespaced_custom_object("finops.dev", "v1alpha1", namespace, "finopsreports", name)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise FinOpsError(f"cannot get FinOpsReport {namespace}/{name} ({getattr(exc, 'status', exc)})",
                              source="report server") from None
        items = [StoredReport.from_item(i) for i in (body.get("status") or {}).get("reports") or []
                 if isinstance(i, dict)]
        return [i for i in items if i is not None]


def _handler(reports: Reports) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "finops-operator"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            status, content_type, body = reports.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("report server: " + format, *args)

    return Handler


class ReportServer:
    """The HTTP server in a daemon thread; ``stop`` closes it."""

    def __init__(self, api_client: Any, port: int, address: str = "0.0.0.0") -> None:
        self.httpd = ThreadingHTTPServer((address, port), _handler(Reports(api_client)))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="report-server", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> ReportServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
