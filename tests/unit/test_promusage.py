"""The live scan's PromQL as strings: no subquery where the design says none, one per CPU statistic without
rules, every percentile 50..99 asked for exactly, the cluster matcher in every selector, the time filter."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from finops_operator.settings import TimeWindow
from finops_operator.sources import promusage
from finops_operator.sources.promql import Scope, open_range
from finops_operator.sources.promusage import UsagePlan
from finops_operator.sources.promwindow import in_window, local_time, offset_segments

DAY = 86400
SCOPE = Scope(namespaces="shop|pay", exclude_namespaces="kube-.*", matchers=('cluster="eu"',))
SUBQUERY = re.compile(r"\[\d+m?s:\d+s\]")
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")


def plan(resource: str, rules: bool, quantiles=(95,), time_filter=None) -> UsagePlan:
    return UsagePlan(resource=resource, rules=rules, bucket_s=DAY, step_s=300, rate_s=300, window_s=14 * DAY,
                     quantiles=quantiles, time_filter=time_filter)


@pytest.mark.parametrize("resource", ["cpu", "memory"])
def test_with_recording_rules_nothing_is_a_subquery(resource):
    p = plan(resource, True, (50, 95, 99))
    bucket = promusage.bucket_stats(p, SCOPE)
    window = promusage.window_quantiles(p, SCOPE)
    assert not any(SUBQUERY.search(q) for q in (*bucket.values(), *window.values()))
    rule = promusage.CPU_RULE if resource == "cpu" else promusage.MEMORY_RULE
    assert set(bucket) == {"count", "mean", "max", "std", "q50", "q95", "q99"}
    assert all(f"{rule}{{" in body and f"[{open_range(DAY)}]" in body for body in bucket.values())
    assert not any("label_replace" in q or " or " in q for q in (*bucket.values(), *window.values()))
    assert set(window) == {f"{resource}_q50", f"{resource}_q95", f"{resource}_q99"}
    assert all(f"[{open_range(14 * DAY)}]" in q for q in window.values())


def test_raw_memory_is_plain_and_raw_cpu_has_one_subquery_per_statistic():
    memory = promusage.bucket_stats(plan("memory", False), SCOPE)
    assert not any(SUBQUERY.search(q) for q in memory.values())
    assert all("container_memory_working_set_bytes{" in q for q in memory.values())
    cpu = promusage.bucket_stats(plan("cpu", False, (90, 97)), SCOPE)
    with_subquery = {stat for stat, body in cpu.items() if SUBQUERY.search(body)}
    assert with_subquery == {"max", "std", "q90", "q97"}
    assert all(len(SUBQUERY.findall(cpu[stat])) == 1 for stat in with_subquery)
    assert "rate(container_cpu_usage_seconds_total{" in cpu["rate"] and "count_over_time(" in cpu["count"]
    assert all(f"[{open_range(DAY)}:300s]" in cpu[stat] for stat in with_subquery)
    window = promusage.window_quantiles(plan("cpu", False, (90, 97)), SCOPE)
    assert all(len(SUBQUERY.findall(q)) == 1 and f"[{open_range(14 * DAY)}:300s]" in q for q in window.values())


def test_every_percentile_from_50_to_99_is_asked_for_exactly():
    everything = tuple(range(50, 100))
    for resource, rules in (("cpu", True), ("cpu", False), ("memory", True), ("memory", False)):
        p = plan(resource, rules, everything)
        bucket = promusage.bucket_stats(p, SCOPE)
        window = promusage.window_quantiles(p, SCOPE)
        for q in everything:
            assert f"quantile_over_time({q / 100}, " in bucket[f"q{q}"]
            assert f"quantile_over_time({q / 100}, " in window[f"{resource}_q{q}"]
            assert 0.5 <= float(repr(q / 100)) <= 0.99


def test_every_selector_carries_the_scope_and_the_cluster_matcher():
    exprs = [q for r in ("cpu", "memory") for rules in (True, False)
             for q in promusage.bucket_stats(plan(r, rules), SCOPE).values()]
    exprs += [q for r in ("cpu", "memory") for q in promusage.window_quantiles(plan(r, False), SCOPE).values()]
    exprs += [*promusage.rule_probe(SCOPE, DAY, 13 * DAY).values(), promusage.raw_samples_per_hour(SCOPE)]
    exprs += [q for rules in (False, True) for q in promusage.pod_means(SCOPE, plan("cpu", rules), DAY).values()]
    exprs += list(promusage.pod_facts(SCOPE, 14 * DAY).values())
    selectors = [m for e in exprs for m in SELECTOR.findall(e)]
    assert len(selectors) == sum(e.count("{") for e in exprs) > 15      # every brace opens a selector
    for metric, matchers in selectors:
        assert 'cluster="eu"' in matchers, metric
    scoped = [m for m in selectors if m[0] not in ("kube_pod_info",) and "namespace=~" in m[1]]
    assert all('namespace!~"kube-.*"' in m for _, m in scoped)


def test_the_probe_counts_both_rules_now_and_the_cpu_rule_in_the_first_bucket():
    probe = promusage.rule_probe(SCOPE, DAY, 13 * DAY)
    assert probe["cpu"].startswith(f"sum(count_over_time({promusage.CPU_RULE}{{") and "[1h]" in probe["cpu"]
    assert probe["memory"].startswith(f"count({promusage.MEMORY_RULE}{{")
    assert f"offset {13 * DAY}s" in probe["start"] and promusage.CPU_RULE in probe["start"]


def test_a_time_window_makes_every_statistic_a_filtered_subquery():
    window = TimeWindow(days=[0, 1, 2, 3, 4], start_hour=8, end_hour=20, time_zone="UTC")
    flt = in_window(window, 0, 14 * DAY)
    for resource, rules in (("cpu", True), ("cpu", False), ("memory", True), ("memory", False)):
        bucket = promusage.bucket_stats(plan(resource, rules, (95,), flt), SCOPE)
        assert set(bucket) == {"count", "mean", "max", "std", "q95"}
        assert all(f" and on() {flt})" in body and SUBQUERY.search(body) for body in bucket.values())
    assert flt == ("(hour(vector(time())) >= 8 < 20) and on() (day_of_week(vector(time())) == 1 or "
                   "day_of_week(vector(time())) == 2 or day_of_week(vector(time())) == 3 or "
                   "day_of_week(vector(time())) == 4 or day_of_week(vector(time())) == 5)")
    assert in_window(None, 0, DAY) is None
    assert in_window(TimeWindow(days=list(range(7)), start_hour=0, end_hour=24), 0, DAY) is None


def test_time_zone_offsets_follow_dst_to_the_second():
    start = int(datetime(2024, 3, 25, tzinfo=UTC).timestamp())
    end = int(datetime(2024, 11, 5, tzinfo=UTC).timestamp())
    segments = offset_segments("Europe/Berlin", start, end)
    spring = int(datetime(2024, 3, 31, 1, tzinfo=UTC).timestamp())
    autumn = int(datetime(2024, 10, 27, 1, tzinfo=UTC).timestamp())
    assert segments == [(start, 3600), (spring, 7200), (autumn, 3600)]
    assert local_time("Europe/Berlin", start, end) == \
        f"time() + 3600 + 3600 * (time() >= bool {spring}) - 3600 * (time() >= bool {autumn})"
    assert local_time("UTC", start, end) == "time()"
    assert local_time("America/New_York", start, start + DAY) == "time() - 14400"
