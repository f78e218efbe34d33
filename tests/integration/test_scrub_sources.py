"""Errors built from what a user-supplied server answered are short and scrubbed (defect 13).

A loopback HTTP server plays a hostile or chatty "Prometheus": it answers 400 with a
huge body that echoes the request's Authorization header, control characters and a
forged log line. The error the operator builds (which ends up in status and Events)
names the server without its credentials and keeps only a short, clean excerpt; no
log line, at DEBUG, carries a secret.
"""
from __future__ import annotations

import http.server
import logging
import threading

import pytest
from finops_operator.errors import DataSourceError
from finops_operator.handlers.logs import install_scrubbing, uninstall_scrubbing
from finops_operator.sources.prometheus import MAX_ANSWER, PrometheusSource

pytestmark = pytest.mark.integration
PASSWORD, TOKEN = "url-pa55word", "bearer-t0ken-value"


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):   # noqa: N802 (http.server's naming)
        body = (f'{{"status":"error","error":"bad query; you sent Authorization: {self.headers.get("Authorization")}'
                f'\\n\\u001b[31mFAKE LOG LINE\\u0000 {"z" * 20000}"}}').encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
def scrubbed_logs():
    install_scrubbing()
    yield
    uninstall_scrubbing()


def test_a_4xx_answer_is_short_and_scrubbed(echo_server, caplog, scrubbed_logs):
    caplog.set_level(logging.DEBUG)
    source = PrometheusSource(f"http://finops:{PASSWORD}@127.0.0.1:{echo_server}", bearer_token=TOKEN, retries=1)
    with pytest.raises(DataSourceError) as caught:
        source.query("up", 0)
    text = str(caught.value)
    assert text.startswith(f"http://***@127.0.0.1:{echo_server}: ") and "query rejected" in text
    assert PASSWORD not in text and TOKEN not in text and "finops:" not in text
    assert "\n" not in text and "\x1b" not in text and "\x00" not in text
    assert len(caught.value.message) <= len("query rejected: ") + MAX_ANSWER
    assert caplog.records, "DEBUG records were captured"
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text


def test_a_bad_url_is_not_echoed_with_its_password():
    from finops_operator.errors import ConfigError
    with pytest.raises(ConfigError) as caught:
        PrometheusSource(f"ftp://finops:{PASSWORD}@prom:9090")
    assert PASSWORD not in str(caught.value)
