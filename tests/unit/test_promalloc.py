"""Hourly allocation reader: the queries respect the scope, and hostile answers end in a clear DataSourceError.

Hostile answers come from a real HTTP server on loopback that answers every
range query with the body under test (the probe gets a valid answer).
"""
from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from finops_operator.errors import DataSourceError
from finops_operator.sources import promalloc
from finops_operator.sources.prometheus import PrometheusSource
from finops_operator.sources.promhours import HOUR_EVAL_OFFSET, MAX_SERIES_PER_ANSWER, Grid, Table, parse_matrix
from finops_operator.sources.promql import Scope

START = datetime(2026, 11, 1, tzinfo=timezone.utc)
H0 = int(START.timestamp())
GRID = Grid(np.arange(H0, H0 + 5 * 3600, 3600, dtype=np.int64))


def at(hour: int) -> float:
    return float(H0 + hour * 3600 + HOUR_EVAL_OFFSET)


def test_every_selector_carries_the_scope():
    scope = Scope(namespaces="shop|pay", exclude_namespaces="pay-tmp", matchers=('cluster="prod"',))
    queries = [promalloc.requests_hourly(scope), promalloc.usage_hourly(scope), promalloc.pods_hourly(scope),
               promalloc.nodes_hourly(scope), promalloc.claims_hourly(scope)]
    selectors = [s for q in queries for s in re.findall(r"\b(kube_\w+|container_\w+)\{([^}]*)\}", q)]
    assert len(selectors) == 11      # requests 1, usage 2, pods 1, nodes 3, claims 4
    for metric, inner in selectors:
        assert 'cluster="prod"' in inner, metric
        namespaced = not metric.startswith(("kube_node", "kube_persistentvolume_"))
        assert ('namespace=~"shop|pay"' in inner and 'namespace!~"pay-tmp"' in inner) == namespaced, metric
    assert all("[3600s]" in q and not re.search(r"\[\w+:\w*\]", q) for q in queries)    # hourly, no subquery


def test_parse_matrix_maps_points_to_hours_and_drops_nan():
    answer = [{"metric": {"namespace": "a", "pod": "p", "container": "c", "stat": "cpu"},
               "values": [[at(0), "0.5"], [at(1), "NaN"], [at(4), "2"]]}]
    parsed = parse_matrix(answer, GRID, source="test", what="usage")
    labels, idx, values = parsed["cpu"][0]
    assert labels == {"namespace": "a", "pod": "p", "container": "c"}
    assert idx.tolist() == [0, 4] and values.tolist() == [0.5, 2.0]


@pytest.mark.parametrize("answer, message", [
    ({"not": "a list"}, "not a list of series"),
    ([{"metric": {"pod": "p"}, "values": [[at(0), "abc"]]}], "not [time, number] pairs"),
    ([{"metric": {"pod": "p"}, "values": [[at(0), {"x": 1}]]}], "not [time, number] pairs"),
    ([{"metric": {"pod": "p"}, "values": [[at(0), "1", "2"]]}], "not [time, number] pairs"),
    ([{"metric": {"pod": "p"}, "values": [[at(0), "+Inf"]]}], "infinite or negative"),
    ([{"metric": {"pod": "p"}, "values": [[at(0), "-3"]]}], "infinite or negative"),
    ([{"metric": {"pod": "p"}, "values": [[at(0) + 60, "1"]]}], "off the hourly grid"),
    ([{"metric": {"pod": "p"}, "values": [[at(9), "1"]]}], "off the hourly grid"),
    ([{"metric": {f"l{i}": "v" for i in range(100)}, "values": []}], "labels"),
    ([{"metric": {"pod": "x" * 5000}, "values": []}], "not short text"),
    ([{"metric": {"pod": 7}, "values": []}], "not short text"),
    (["just a string"], "labels"),
    ([{"metric": {}, "values": []}] * (MAX_SERIES_PER_ANSWER + 1), "narrow the scope"),
])
def test_hostile_answers_are_data_source_errors(answer, message):
    with pytest.raises(DataSourceError, match=re.escape(message)):
        parse_matrix(answer, GRID, source="test", what="usage")


def test_rows_are_bounded_by_cells():
    table = Table(hours=100, names=("x",), max_cells=1000, source="test")
    for i in range(10):
        table.row(("k", i))
    with pytest.raises(DataSourceError, match="narrow the scope"):
        table.row(("k", 10))


class Hostile:
    """Answers the probe properly and every range query with ``body`` (status 200)."""

    def __init__(self, body: bytes):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:   # noqa: N802
                if self.path.startswith("/api/v1/query_range"):
                    payload = outer.body
                else:
                    payload = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                        {"metric": {}, "value": [0, "1"]}]}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.body = body
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def matrix(result) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()


@pytest.mark.parametrize("body, message", [
    (b"[1, 2, 3]", "not Prometheus JSON"),
    (b"<html>proxy login</html>", "not Prometheus JSON"),
    (json.dumps({"status": "success", "data": {"result": "oops"}}).encode(), "not a list of series"),
    (matrix([{"metric": {"namespace": "a"}, "values": [[at(0), "NaN"], [at(1), "1e999"]]}]), "infinite"),
    (matrix([{"metric": {"namespace": "a"}, "values": "not points"}]), "not [time, number] pairs"),
    (matrix([]), "no container series"),
])
def test_a_hostile_server_never_crashes_the_reader(body, message):
    server = Hostile(body)
    try:
        source = PrometheusSource(server.url, retries=1, timeout=5)
        with pytest.raises(DataSourceError, match=re.escape(message)):
            promalloc.read_usage_hours(source, Scope(), START, START + timedelta(hours=5))
        assert source.requests <= promalloc.planned_requests(1)
    finally:
        server.close()
