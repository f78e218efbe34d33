"""The FinOpsReport resource's pure parts: spec parsing and confinement, when a report is due (once per slot,
the newest after downtime), retention, report ids, the summary item, and the report server's path rules."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from finops_operator.api.report import read_report
from finops_operator.api.reportrun import due_slot, summary_item
from finops_operator.api.reportserve import Request, listing, parse_path
from finops_operator.api.reportstore import StoredReport, prune, report_config_map, report_key
from finops_operator.errors import ConfigError

OP_NS = "finops-system"


def body(spec: dict, namespace: str = "team-a", name: str = "weekly") -> dict:
    return {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsReport",
            "metadata": {"name": name, "namespace": namespace, "uid": "u1", "generation": 2}, "spec": spec}


def test_a_valid_spec_reads_with_defaults():
    spec = read_report(body({"schedule": "0 7 * * MON", "timeZone": "Europe/Berlin"}), operator_ns=OP_NS)
    assert spec.schema.period == "Weekly" and spec.schema.persona == "cfo"
    assert spec.namespaces == ("team-a",)
    assert spec.schema.retention.count == 12 and spec.generation == 2


@pytest.mark.parametrize(("spec", "field", "words"), [
    ({"schedule": "0 7 31 2 *"}, "spec.schedule", "never fires"),
    ({"schedule": "every monday"}, "spec.schedule", "cron"),
    ({"schedule": "@daily", "timeZone": "Mars/Olympus"}, "spec.timeZone", "time zone"),
    ({"schedule": "@daily", "retention": {"count": 0, "days": 0}}, "spec.retention", "count or days"),
    ({"schedule": "@daily", "period": "Daily"}, "spec.period", "Weekly"),
    ({"schedule": "@daily", "scope": {"namespaces": ["team-b"]}}, "spec.scope.namespaces", "operator's namespace"),
])
def test_bad_specs_name_the_field_and_the_fix(spec, field, words):
    with pytest.raises(ConfigError) as caught:
        read_report(body(spec), operator_ns=OP_NS)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_a_report_in_the_operator_namespace_may_read_others():
    spec = read_report(body({"schedule": "@daily", "scope": {"namespaces": ["a", "b"]}}, namespace=OP_NS),
                       operator_ns=OP_NS)
    assert spec.namespaces == ("a", "b")


def every_minute(tz: str = "UTC"):
    return read_report(body({"schedule": "* * * * *", "timeZone": tz}), operator_ns=OP_NS)


def test_the_first_slot_is_the_first_scheduled_time_after_creation_and_each_slot_runs_once():
    spec = every_minute()
    created = datetime(2026, 11, 30, 10, 0, 20, tzinfo=UTC)
    assert due_slot(spec, {}, created, created + timedelta(seconds=30)) is None
    slot = due_slot(spec, {}, created, datetime(2026, 11, 30, 10, 1, 5, tzinfo=UTC))
    assert slot == datetime(2026, 11, 30, 10, 1, tzinfo=UTC)
    done = {"lastSlot": "2026-11-30T10:01:00Z"}          # what generate() wrote; a restart reads it back
    assert due_slot(spec, done, created, datetime(2026, 11, 30, 10, 1, 59, tzinfo=UTC)) is None
    assert due_slot(spec, done, created, datetime(2026, 11, 30, 10, 2, 0, tzinfo=UTC)) == \
        datetime(2026, 11, 30, 10, 2, tzinfo=UTC)


def test_after_downtime_only_the_newest_missed_slot_is_generated():
    spec = read_report(body({"schedule": "0 6 * * *", "timeZone": "Europe/Berlin"}), operator_ns=OP_NS)
    slot = due_slot(spec, {"lastSlot": "2026-11-20T05:00:00Z"}, None, datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    assert slot == datetime(2026, 11, 30, 5, 0, tzinfo=UTC)          # 06:00 in Berlin (CET)
    assert report_key(slot, spec) == "2026-11-30-0600"


def entry(day: int) -> StoredReport:
    end = f"2026-11-{day:02d}T06:00:00Z"
    return StoredReport(f"2026-11-{day:02d}-0600", "Weekly", end, end, end, "/p", "cm", 10, {})


def test_retention_keeps_the_newest_by_count_and_by_age():
    entries = [entry(d) for d in (3, 10, 17, 24)]
    keep, drop = prune(entries, 2, 0, datetime(2026, 11, 30, tzinfo=UTC))
    assert [e.date[:10] for e in keep] == ["2026-11-24", "2026-11-17"]
    assert {e.date[:10] for e in drop} == {"2026-11-03", "2026-11-10"}
    keep, drop = prune(entries, 0, 14, datetime(2026, 11, 30, tzinfo=UTC))
    assert [e.date[:10] for e in keep] == ["2026-11-24", "2026-11-17"]
    keep, _ = prune([entry(24), entry(24)], 5, 0, datetime(2026, 11, 30, tzinfo=UTC))
    assert len(keep) == 1


def test_config_map_names_are_dns_names_and_unique_per_date():
    assert report_config_map("weekly", "2026-11-30-0600") == "finops-report-weekly-202611300600"
    long = "x" * 253
    a, b = report_config_map(long, "2026-11-30-0600"), report_config_map(long, "2026-12-07-0600")
    assert len(a) <= 253 and a != b


def test_the_summary_item_is_named_by_the_report_and_its_date():
    spec = read_report(body({"schedule": "@daily", "channels": [{"name": "slack"}]}), operator_ns=OP_NS)
    now = datetime(2026, 11, 30, tzinfo=UTC)
    item = summary_item(spec, entry(30), "**report**\n" + "x" * 5000, "slack", now)
    assert item.id == "report:team-a/weekly:2026-11-30-0600" and item.channel == "slack"
    assert len(item.text) < 3700 and "Full report: /p" in item.text


@pytest.mark.parametrize(("path", "want"), [
    ("/reports/team-a/weekly/", Request("team-a", "weekly")),
    ("/reports/team-a/weekly/2026-11-30-0600.html", Request("team-a", "weekly", "2026-11-30-0600", "html")),
    ("/reports/team-a/weekly.v2/2026-11-30-0600.md?x=1", Request("team-a", "weekly.v2", "2026-11-30-0600", "md")),
    ("/reports/team-a/weekly", None),
    ("/reports/../weekly/2026-11-30-0600.html", None),
    ("/reports/team-a/%2e%2e/2026-11-30-0600.html", None),
    ("/reports/team-a/weekly/..%2f..%2fsecret.html", None),
    ("/reports/Team-A/weekly/", None),
    ("/reports/team-a/weekly/2026-11-30-0600.exe", None),
    ("/reports/team-a/weekly/2026-11-30.html", None),
    ("/reports/team-a/weekly/2026-11-30-0600.html/x", None),
    ("//reports/team-a/weekly/", None),
    ("/metrics", None),
])
def test_only_exact_report_paths_are_served(path, want):
    assert parse_path(path) == want


def test_the_listing_escapes_and_links_each_format():
    page = listing("team-a", "weekly", [entry(30)])
    assert 'href="2026-11-30-0600.html"' in page and 'href="2026-11-30-0600.json"' in page
    assert "<script" not in listing("a", "<script>", [])


def test_the_example_reads():
    from pathlib import Path

    import yaml
    example = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples/crs/finopsreport.yaml").read_text())
    spec = read_report(example, operator_ns="finops-system")
    assert spec.schema.channels[0].name == "finops-slack" and spec.namespaces == ("finops-system",)


def test_the_last_report_patch_removes_headline_figures_the_new_report_lacks():
    from finops_operator.api.reportrun import replacing
    old = {"date": "a", "headline": {"gap": {"x": 1, "y": 2}, "old": 3}}
    assert replacing(old, {"date": "b", "headline": {"gap": {"x": 5}}}) == {
        "date": "b", "headline": {"gap": {"x": 5, "y": None}, "old": None}}
    assert replacing(None, {"a": 1}) == {"a": 1}


def test_a_long_downtime_still_generates_the_newest_slot_only():
    spec = every_minute()
    now = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)
    slot = due_slot(spec, {"lastSlot": "2026-11-20T00:00:00Z"}, None, now)     # 14,000 minutes ago
    assert slot == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_an_operator_report_carries_the_latest_runs_costs_and_insights():
    """The report timer hands over the policies' latest runs: cost by team and namespace, and insights."""
    from finops_operator.api.reportgen import add_run_costs
    from finops_operator.cli.common import DEMO_SCENARIO
    from finops_operator.costrun import allocate_window
    from finops_operator.health import HealthData
    from finops_operator.pricing import PriceBook
    from finops_operator.reports import ReportData, build_report, render_html
    from finops_operator.simulator import load_scenario, simulate, simulate_bill, usage_hours
    sim = simulate(load_scenario(DEMO_SCENARIO))
    book = PriceBook.for_region(sim.state.region)
    allocation = allocate_window(usage_hours(sim), sim.state.nodes, book, simulate_bill(sim, book))
    spec = read_report(body({"schedule": "@daily", "persona": "cfo"}), operator_ns=OP_NS)
    data = ReportData(source="test")
    add_run_costs(data, spec, [(OP_NS, "other"), (OP_NS, "shop")], {(OP_NS, "shop"): HealthData(allocation=allocation)})
    assert data.costs_by_namespace.total == pytest.approx(allocation.total)
    assert {r.key for r in data.costs_by_team.rows} >= {"payments", "search"}
    assert {i.persona.value for i in data.insights} <= {"cfo"}        # the report's persona only
    html = render_html(build_report(data, period="weekly", end=sim.state.window.end))
    assert "payments" in html
    empty = ReportData(source="test")
    add_run_costs(empty, spec, [(OP_NS, "shop")], {})                  # no run yet (a restart): no cost sections
    assert empty.costs_by_team is None and empty.insights == []
