"""What the Prometheus source refuses before it sends anything: bad headers, a scan over its request budget,
a percentile the statistics do not hold."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from finops_operator.errors import ConfigError
from finops_operator.models import SUPPORTED_PERCENTILES, UsageStats, Window
from finops_operator.settings import MAX_HISTORY_WINDOW, PolicySettings, load_policy
from finops_operator.sources.prometheus import (MAX_REQUESTS_PER_SCAN, PrometheusSource, align_window,
                                                check_headers, planned_requests, split_window)
from finops_operator.sources.promql import Scope

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


def test_the_longest_window_fits_the_budget_and_3000_weeks_would_not():
    def chunks(history):
        return len(split_window(align_window(Window(END - history, END, 300)), timedelta(days=1)))
    assert planned_requests(chunks(MAX_HISTORY_WINDOW)) <= MAX_REQUESTS_PER_SCAN
    assert planned_requests(chunks(timedelta(weeks=3000))) > 100_000


def test_a_scan_over_budget_fails_before_sending():
    source = PrometheusSource(NOWHERE, max_requests=50, retries=1)
    with pytest.raises(ConfigError) as err:
        source.collect(Scope(), Window(END - timedelta(days=30), END, 300))
    assert source.requests == 0
    assert err.value.permanent and "over the budget of 50" in str(err.value) and "history window" in str(err.value)


def test_a_window_shorter_than_the_step_is_a_config_error():
    source = PrometheusSource(NOWHERE, retries=1)
    with pytest.raises(ConfigError) as err:
        end = END + timedelta(minutes=30)            # 12:20 and 12:30 both align down to 12:00
        source.collect(Scope(), Window(end - timedelta(minutes=10), end, 3600))
    assert source.requests == 0 and err.value.permanent


def test_settings_accept_exactly_the_percentiles_the_statistics_hold():
    stats = UsageStats(samples=1, expected=1, p50=1, p90=2, p95=3, p99=4, max=5, mean=1, std=0)
    for q in SUPPORTED_PERCENTILES:
        settings = load_policy({"detectors": {"cpu": {"percentile": q}, "memory": {"percentile": q}}})
        assert stats.percentile(settings.detectors.cpu.percentile) == stats.percentile(q)
    for q in (49, 51, 97, 100.5, 101):
        with pytest.raises(ConfigError) as err:
            load_policy({"detectors": {"cpu": {"percentile": q}}})
        assert err.value.field == "detectors.cpu.percentile"
    assert PolicySettings().detectors.cpu.percentile in SUPPORTED_PERCENTILES


def test_an_unsupported_percentile_is_a_typed_error_not_a_key_error():
    stats = UsageStats(samples=1, expected=1, p50=1, p90=2, p95=3, p99=4, max=5, mean=1, std=0)
    with pytest.raises(ConfigError) as err:
        stats.percentile(97)
    assert err.value.field == "percentile" and "50, 90, 95, 99, 100" in str(err.value)
