"""The live ``timeWindow`` filter evaluated by a real Prometheus keeps exactly the instants the snapshot path's
``usage.window_mask`` keeps: across both DST changes of a year, in zones east and west of UTC."""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from finops_operator.settings import TimeWindow
from finops_operator.sources.prometheus import PrometheusSource
from finops_operator.sources.promwindow import in_window
from finops_operator.usage import window_mask
from tests.support.prometheus_server import PrometheusServer, binaries_or_fail

pytestmark = pytest.mark.integration
STEP = 900


@pytest.fixture(scope="module")
def empty_prometheus(tmp_path_factory):
    binaries_or_fail()
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus-tw")).start()
    yield server
    server.stop()


@pytest.mark.parametrize("window, start, end", [
    (TimeWindow(days=[0, 1, 2, 3, 4], start_hour=8, end_hour=20, time_zone="Europe/Berlin"),
     datetime(2024, 3, 27, tzinfo=UTC), datetime(2024, 4, 3, tzinfo=UTC)),
    (TimeWindow(days=[5, 6], start_hour=0, end_hour=6, time_zone="America/New_York"),
     datetime(2024, 10, 29, tzinfo=UTC), datetime(2024, 11, 12, tzinfo=UTC)),
    (TimeWindow(days=[0, 2, 4], start_hour=9, end_hour=24, time_zone="Asia/Kolkata"),
     datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 8, tzinfo=UTC)),
    (TimeWindow(days=[0, 1, 2, 3, 4, 5, 6], start_hour=22, end_hour=24, time_zone="Australia/Lord_Howe"),
     datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 4, 14, tzinfo=UTC)),
], ids=["berlin-spring", "new-york-autumn-weekend-nights", "kolkata-half-hour", "lord-howe-half-hour-dst"])
def test_filter_matches_the_snapshot_mask(empty_prometheus, window, start, end):
    lo, hi = int(start.timestamp()), int(end.timestamp())
    flt = in_window(window, lo, hi)
    source = PrometheusSource(empty_prometheus.url)
    answer = source.query_range(f"vector(1) and on() {flt}", lo, hi, STEP)
    kept = {int(float(t)) for series in answer for t, _ in series["values"]}
    times = np.arange(lo, hi + 1, STEP)
    want = {int(t) for t in times[window_mask(times, window)]}
    assert want and kept == want
