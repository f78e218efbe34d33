"""A server whose sample limit (``--query.max-samples``) refuses one pass over the window: the scan reads the
per-bucket queries in time slices (exact: buckets are independent), replaces the refused window quantiles
by the largest bucket quantile (an upper bound) and says so; a limit too low for one bucket is an error."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from finops_operator.errors import DataSourceError
from finops_operator.models import Window
from finops_operator.sources.prometheus import PrometheusSource
from finops_operator.sources.promql import Scope
from tests.support.fixtures_prometheus import build_scenario
from tests.support.prom_requests import scan_requests
from tests.support.prometheus_server import PrometheusServer, history_end, binaries_or_fail

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    binaries_or_fail()
    workdir = tmp_path_factory.mktemp("prometheus-limited")
    history = build_scenario(history_end())
    server = PrometheusServer(workdir)
    server.backfill(history.write(workdir / "history.om"))
    window = Window(datetime.fromtimestamp(history.start, timezone.utc),
                    datetime.fromtimestamp(history.end, timezone.utc), 60)
    yield server, window
    server.stop()


def scan(server: PrometheusServer, window: Window, max_samples: int, remote_read: str = "Off"):
    """A scan with the server's ``query.max-samples``; PromQL only unless ``remote_read`` (the limit is about
    query evaluation, remote read has its own)."""
    server.stop()
    server.start(max_samples=max_samples)
    return PrometheusSource(server.url, remote_read=remote_read).collect(
        Scope(namespaces="small"), window, percentiles={"cpu": (95,), "memory": (95,)})


def test_time_slices_are_exact_and_refused_window_quantiles_are_an_upper_bound(limited):
    server, window = limited
    whole = scan(server, window, 200_000_000)
    sliced = scan(server, window, 2000)
    requests = scan_requests({"cpu": (95,), "memory": (95,)}, node_query=True)
    assert (whole.chunks, whole.queries, whole.notes) == (1, requests, [])
    assert sliced.chunks == 2 and sliced.queries > requests     # some range queries in two slices, more requests
    refused = {name for name in ("cpu", "memory") if any(f"window quantile {name} p95" in n for n in sliced.notes)}
    assert refused and all("upper bound" in n for n in sliced.notes if n.startswith("window quantile"))
    assert any("2 time slices" in n for n in sliced.notes)
    for key, got in sliced.usage.items():
        want = whole.usage[key]
        for name in ("cpu", "memory"):
            a, b = getattr(got, name), getattr(want, name)
            assert a.days == b.days and (a.max, a.mean, a.samples) == (b.max, b.mean, b.samples), (key, name)
            if name in refused:     # refused: the largest bucket quantile, an upper bound
                assert b.percentile(95) <= a.percentile(95) == max(a.days.quantiles[95]) <= a.max, (key, name)
            else:                   # the other resource's quantile is one request of its own: still exact
                assert a.percentile(95) == b.percentile(95), (key, name)
    # with remote read the raw CPU samples come without PromQL evaluation: exact under the same limit
    remote = scan(server, window, 2000, remote_read="Auto")
    assert not any(n.startswith("window quantile cpu") for n in remote.notes)
    for key, got in remote.usage.items():
        want = whole.usage[key].cpu
        assert got.cpu.percentile(95) == pytest.approx(want.percentile(95), rel=1e-9), key
        assert got.cpu.max == pytest.approx(want.max, rel=1e-9) and got.cpu.std == pytest.approx(want.std, rel=1e-9)


def test_a_limit_below_one_bucket_is_an_error_naming_the_server(limited):
    server, window = limited
    with pytest.raises(DataSourceError) as err:
        scan(server, window, 100)
    assert server.url in str(err.value) and "too many samples" in str(err.value)
