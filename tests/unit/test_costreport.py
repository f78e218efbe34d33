"""cost_report: the one grouping, top-N and reconciliation rule behind `finops costs`, the gauges and the demo."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from finops_operator.costreport import (SCHEMA, CostWindow, cost_report, fit_window, parse_by, parse_window,
                                        report_to_json)
from finops_operator.errors import ConfigError
from finops_operator.models.costs import Charge, ChargeKind, CostCategory, charge_key
from tests.support.fixtures_costs import END, START, allocation, bill, container

NOW = datetime(2024, 6, 15, 12, 30, tzinfo=UTC)


def costs(report) -> dict[str, float]:
    return {r.label: round(r.cost, 6) for r in report.rows}


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("text,start,end", [
    ("7d", NOW - timedelta(days=7), NOW),
    ("30d", NOW - timedelta(days=30), NOW),
    ("36h", NOW - timedelta(hours=36), NOW),
    ("month-to-date", datetime(2024, 6, 1, tzinfo=UTC), NOW),
    ("2024-06-01..2024-06-03", datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 4, tzinfo=UTC)),
    ("2024-06-01T06:00..2024-06-02T06:00", datetime(2024, 6, 1, 6, tzinfo=UTC), datetime(2024, 6, 2, 6, tzinfo=UTC)),
    ("2024-06-01T08:00+02:00..2024-06-02", datetime(2024, 6, 1, 6, tzinfo=UTC), datetime(2024, 6, 3, tzinfo=UTC)),
])
def test_window_forms(text, start, end):
    window = parse_window(text, now=NOW)
    assert (window.asked, window.start, window.end) == (text, start, end)


@pytest.mark.parametrize("text,message,forms", [
    ("last week", "'last week' is not a window", True),
    ("7x", "'7x' is not a window", True),
    ("0d", "is zero", True),
    ("2024-06-31..2024-07-01", "'2024-06-31' in '2024-06-31..2024-07-01' is not an ISO date", True),
    ("2024-06-05..2024-06-01", "ends before it starts", False),
    ("2020-01-01..2024-01-01", "longer than 400 days", False),
    ("1000d", "longer than the maximum", True),
])
def test_bad_windows_name_the_option_and_the_accepted_forms(text, message, forms):
    with pytest.raises(ConfigError) as err:
        parse_window(text, now=NOW)
    assert err.value.field == "--window" and message in str(err.value)
    assert str(err.value).startswith("--window: ")
    assert ("accepted: 7d, 30d (any duration: 12h, 2w), month-to-date, or FROM..TO" in str(err.value)) is forms


def test_month_to_date_on_the_first_instant_of_a_month_is_refused_not_empty():
    with pytest.raises(ConfigError, match="month-to-date is empty at 2024-07-01 00:00"):
        parse_window("month-to-date", now=datetime(2024, 7, 1, tzinfo=UTC))


def test_a_window_beyond_the_data_is_stated_not_silently_cut():
    asked = parse_window("30d", now=END)
    fitted, notes = fit_window(asked, START, END)
    assert (fitted.start, fitted.end, fitted.asked) == (START, END, "30d")
    assert len(notes) == 1 and "--window 30d asks for 2024-05-16 00:00 .. 2024-06-15 00:00" in notes[0]
    assert "the data covers 2024-06-01 00:00 .. 2024-06-15 00:00" in notes[0] and "14.0 of 30.0 days" in notes[0]
    inside = parse_window("7d", now=END)
    assert fit_window(inside, START, END) == (inside, [])
    with pytest.raises(ConfigError, match="outside the data, which covers 2024-06-01 00:00 .. 2024-06-15 00:00"):
        fit_window(parse_window("2024-01-01..2024-01-31", now=END), START, END)


@pytest.mark.parametrize("text", ["namespace", "team", "workload", "node", "service", "category", "label:app",
                                  "label:app.kubernetes.io/name"])
def test_groupings_accepted(text):
    assert parse_by(text) == text


@pytest.mark.parametrize("text", ["pod", "label:", "label:a b", "Namespace"])
def test_bad_grouping_lists_the_choices(text):
    with pytest.raises(ConfigError, match="use one of namespace, team, workload, node, service, category or "
                                          "label:KEY") as err:
        parse_by(text)
    assert err.value.field == "--by"


# --------------------------------------------------------------------------- grouping


def test_by_namespace_keeps_idle_shared_and_unallocated_as_their_own_rows():
    report = cost_report(allocation(), by="namespace", bill=bill())
    assert [r.label for r in report.rows] == ["payments", "search", "web", "idle", "shared", "unallocated"]
    assert costs(report) == {"payments": 400.0, "search": 290.0, "web": 50.0, "idle": 180.0, "shared": 50.0,
                             "unallocated": 20.0}
    assert [r.kind for r in report.rows] == ["allocated"] * 3 + ["idle", "shared", "unallocated"]
    assert report.totals == {"allocated": 740.0, "idle": 180.0, "shared": 50.0, "unallocated": 20.0, "total": 990.0}
    assert report.residual == pytest.approx(10.0) and report.residual_percent == pytest.approx(1.0)
    assert sum(r.cost for r in report.rows) == pytest.approx(report.total)


@pytest.mark.parametrize("by,expected", [
    ("team", {"pay": 400.0, "find": 290.0, "unassigned": 50.0}),
    ("workload", {"payments/Deployment/api": 300.0, "search/StatefulSet/es": 290.0,
                  "payments/Deployment/worker": 100.0, "web/Deployment/front": 50.0}),
    ("label:app", {"api": 300.0, "es": 250.0, "worker": 100.0, "front": 50.0, "(no label:app)": 40.0}),
    ("node", {"node-b": 350.0, "node-a": 350.0, "idle · node-a": 120.0, "idle · node-b": 60.0, "(no node)": 40.0}),
    ("category", {"node": 700.0, "idle · node": 180.0, "shared · control-plane": 50.0, "volume": 40.0,
                  "unallocated · other": 20.0}),
    ("service", {"AmazonEC2": 740.0, "idle · AmazonEC2": 180.0, "shared · AmazonEKS": 50.0,
                 "unallocated · AmazonS3": 20.0}),
])
def test_every_grouping_adds_up_to_the_same_total(by, expected):
    report = cost_report(allocation(), by=by)
    got = costs(report)
    for label, cost in expected.items():
        assert got[label] == cost, (label, got)
    assert sum(got.values()) == pytest.approx(990.0)
    if by in ("team", "workload", "label:app"):
        assert {"idle", "shared", "unallocated"} <= set(got)


def test_charge_key_rejects_an_unknown_grouping():
    with pytest.raises(ValueError, match="unknown grouping 'pod'"):
        charge_key(container("a", "Deployment/b", 1.0), "pod")


def test_rows_are_ranked_by_cost_then_label():
    report = cost_report(allocation(extra=[container("audit", "Deployment/x", 50.0)]), by="namespace")
    assert [r.label for r in report.rows[:4]] == ["payments", "search", "audit", "web"]


# --------------------------------------------------------------------------- top N


def test_top_n_folds_the_rest_into_other_and_keeps_the_kind_rows():
    report = cost_report(allocation(), by="workload", top=2)
    assert [r.label for r in report.rows] == ["payments/Deployment/api", "search/StatefulSet/es", "other (2 rows)",
                                              "idle", "shared", "unallocated"]
    other = report.rows[2]
    assert (other.kind, other.cost, other.charges) == ("other", 150.0, 2)
    assert other.cpu_cost == pytest.approx(112.5)
    assert sum(r.cost for r in report.rows) == pytest.approx(990.0)


def test_top_n_larger_than_the_rows_adds_no_other_row():
    report = cost_report(allocation(), by="namespace", top=3)
    assert not any(r.kind == "other" for r in report.rows)


def test_top_must_be_positive():
    with pytest.raises(ConfigError, match="--top 0 must be at least 1"):
        cost_report(allocation(), top=0)


# --------------------------------------------------------------------------- sources, notes, JSON


def test_price_sources_are_shares_of_node_cost_and_bill_problems_are_notes():
    report = cost_report(allocation(), bill=bill(problems=["no NAT gateway tagged for the cluster"]),
                         notes=["window note"])
    assert [(s.source.value, s.cost, round(s.percent, 3)) for s in report.price_sources] == \
        [("list", 630.0, 71.591), ("spot", 250.0, 28.409)]          # effective: 0, not shown
    assert report.bill_source == "cur:duckdb"
    assert report.notes == ["window note", "no NAT gateway tagged for the cluster"]


def test_no_bill_means_no_residual():
    report = cost_report(allocation(bill_total=None), by="team")
    assert report.residual is None and report.residual_percent is None and report.bill_source is None
    assert report_to_json(report)["bill"] == {"source": None, "total": None, "residual": None,
                                              "residualPercent": None}


def test_json_schema_is_stable():
    window = CostWindow("30d", START, END)
    data = json.loads(json.dumps(report_to_json(cost_report(allocation(), by="namespace", top=2, window=window,
                                                            bill=bill()))))
    assert list(data) == ["schema", "by", "window", "currency", "rows", "totals", "bill", "priceSources", "notes"]
    assert data["schema"] == SCHEMA == "finops.costs/v1"
    assert data["window"] == {"asked": "30d", "start": "2024-06-01T00:00:00+00:00",
                              "end": "2024-06-15T00:00:00+00:00", "hours": 336.0}
    assert data["rows"][0] == {"label": "payments", "kind": "allocated", "key": "payments", "cost": 400.0,
                               "cpuCost": 300.0, "memoryCost": 100.0, "idleShare": 0.0, "sharedShare": 0.0,
                               "percent": 40.4, "charges": 2}
    assert [r["kind"] for r in data["rows"]] == ["allocated", "allocated", "other", "idle", "shared", "unallocated"]
    assert data["rows"][2]["label"] == "other (1 rows)"
    assert data["totals"] == {"allocated": 740.0, "idle": 180.0, "shared": 50.0, "unallocated": 20.0, "total": 990.0}
    assert data["bill"] == {"source": "cur:duckdb", "total": 1000.0, "residual": 10.0, "residualPercent": 1.0}
    assert data["priceSources"] == [{"source": "list", "cost": 630.0, "percent": 71.59},
                                    {"source": "spot", "cost": 250.0, "percent": 28.41}]
    assert data["currency"] == "USD" and data["notes"] == []


def test_json_money_is_rounded_by_the_money_rule():
    odd = [Charge(kind=ChargeKind.CONTAINER, cost=0.125, namespace="a", category=CostCategory.NODE)]
    data = report_to_json(cost_report(allocation(extra=odd), by="namespace"))
    assert next(r for r in data["rows"] if r["label"] == "a")["cost"] == 0.13
