"""What the Prometheus source refuses before it sends anything: bad headers, a scan over its request budget,
a percentile outside 50..100, a percentile the statistics did not compute."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from finops_operator.errors import ConfigError
from finops_operator.models import UsageStats, Window
from finops_operator.settings import MAX_HISTORY_WINDOW, PolicySettings, load_policy
from finops_operator.sources.prometheus import MAX_REQUESTS_PER_SCAN, PrometheusSource, align_window, check_headers
from finops_operator.sources.prombuckets import BucketGrid
from finops_operator.sources.promscan import ScanRequest, planned, plans_for
from finops_operator.sources.promql import Scope
from finops_operator.stats import needed_percentiles

END = datetime(2024, 6, 15, tzinfo=UTC)
# Nothing listens here: a test that sent a request would fail with "unavailable", not with the budget error.
NOWHERE = "http://127.0.0.1:9"


@pytest.mark.parametrize("headers, field", [
    ({"X-Scope-OrgID": "tenant\r\nX-Injected: 1"}, "headers.X-Scope-OrgID"),
    ({"X-Scope-OrgID": "tenant\n"}, "headers.X-Scope-OrgID"),
    ({"X-Scope-OrgID": "a\x00b"}, "headers.X-Scope-OrgID"),
    ({"X Scope": "a"}, "headers.X Scope"),
    ({"X-Evil\r\n": "a"}, "headers.X-Evil\r\n"),
    ({"authorization": "Bearer x"}, "headers.authorization"),
])
def test_bad_headers_are_refused_naming_the_header(headers, field):
    with pytest.raises(ConfigError) as err:
        check_headers(headers)
    assert err.value.field == field
    with pytest.raises(ConfigError):
        PrometheusSource(NOWHERE, headers=headers)


def test_good_headers_pass():
    assert check_headers({"X-Scope-OrgID": "team-a", "Accept-Language": "en; q=0.5"}) == {
        "X-Scope-OrgID": "team-a", "Accept-Language": "en; q=0.5"}


def test_a_scan_needs_the_same_requests_whatever_the_window():
    # the probe and objects; six container facts; per resource count, mean (or rate), max, std and the
    # percentile; the two window quantiles; a narrower scope adds the pods' per-bucket sums and counts for
    # node usage (4 parts)
    for history in (timedelta(hours=2), timedelta(days=14), MAX_HISTORY_WINDOW):
        window = align_window(Window(END - history, END, 300))
        grid = BucketGrid.of(window)
        request = ScanRequest(scope=Scope(namespaces="shop"), window=window,
                              percentiles={"cpu": (95,), "memory": (99,)})
        assert planned(plans_for(request, grid, False), request.scope) == 8 + 2 * 5 + 2 + 4 <= MAX_REQUESTS_PER_SCAN
        assert planned(plans_for(request, grid, True), Scope()) == 8 + 2 * 5 + 2
        assert len(grid.ends) == (max(4, history // timedelta(days=1)) if history >= timedelta(days=2) else 4)


def test_a_scan_over_budget_fails_before_sending():
    source = PrometheusSource(NOWHERE, max_requests=5, retries=1)
    with pytest.raises(ConfigError) as err:
        source.collect(Scope(), Window(END - timedelta(days=30), END, 300))
    assert source.requests == 0
    assert err.value.permanent and "over the budget of 5" in str(err.value)


def test_a_window_shorter_than_the_step_is_a_config_error():
    source = PrometheusSource(NOWHERE, retries=1)
    with pytest.raises(ConfigError) as err:
        end = END + timedelta(minutes=30)            # 12:20 and 12:30 both align down to 12:00
        source.collect(Scope(), Window(end - timedelta(minutes=10), end, 3600))
    assert source.requests == 0 and err.value.permanent


def test_settings_accept_any_integer_percentile_from_50_to_100_and_the_statistics_compute_it():
    for q in range(50, 101):
        settings = load_policy({"detectors": {"cpu": {"percentile": q}, "memory": {"percentile": q}}})
        assert settings.detectors.cpu.percentile == q and settings.detectors.memory.percentile == q
        assert needed_percentiles(settings) == {"cpu": frozenset({q} - {100}), "memory": frozenset({q} - {100})}
    for q in (49, 0, -5, 100.5, 101, "high"):
        with pytest.raises(ConfigError) as err:
            load_policy({"detectors": {"cpu": {"percentile": q}}})
        assert err.value.field == "detectors.cpu.percentile"
    assert needed_percentiles(PolicySettings()) == {"cpu": frozenset({90}), "memory": frozenset({99})}


def test_a_percentile_that_was_not_computed_is_a_typed_error_not_a_key_error():
    stats = UsageStats(samples=1, expected=1, quantiles={95: 3, 99: 4}, max=5, mean=1, std=0)
    assert stats.percentile(95) == 3 and stats.percentile(100) == 5
    with pytest.raises(ConfigError) as err:
        stats.percentile(97)
    assert err.value.field == "percentile" and "computed: 95, 99, 100" in str(err.value)
