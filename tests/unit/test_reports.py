"""build_report (sections present or absent, figures, lead time, recommendations) and its renderers
(escaping, no external URL, the finops.report/v1 shape, a short Markdown)."""
from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from finops_operator.errors import ConfigError
from finops_operator.ledger import Opportunity, OpportunityState, Transition
from finops_operator.models.spend import Forecast, ForecastPoint, SpendSeries
from finops_operator.reports import (SCHEMA, BudgetLine, ReportData, build_report, render_html, render_json,
                                     render_markdown)
from finops_operator.reports.ledgerstats import percentile

END = datetime(2026, 11, 30, tzinfo=UTC)
S = OpportunityState
EVIL = '<script>alert("x")</script><img src=https://evil.example/x.png>'


def opp(i: int, *steps: tuple[str, float], savings: float = 100.0, realized: float | None = None,
        ns: str = "shop", type_: str = "rightsize-cpu", team: str = "payments") -> Opportunity:
    """An opportunity first seen at END - steps[0] days, then each (state, days before END)."""
    first = END - timedelta(days=steps[0][1])
    o = Opportunity(id=f"o{i}", detector="d", type=type_, target=f"Deployment/{ns}/w{i}", namespace=ns, team=team,
                    cluster="prod", state=S(steps[0][0]), estimated_monthly_savings=savings, confidence=0.9, risk=0.1,
                    fingerprint="f", first_seen=first, last_seen=END)
    prev = None
    for state, days in steps:
        at = END - timedelta(days=days)
        o.history.append(Transition(at, prev, state, "test"))
        prev, o.state = state, S(state)
        if state == "Proposed":
            o.pr_url = f"https://github.com/acme/gitops/pull/{i}"
        if state == "Merged":
            o.merged_at = at
        if state == "Verified":
            o.verified_at, o.realized_monthly_savings = at, realized
    return o


@pytest.fixture
def ledger() -> list[Opportunity]:
    return [
        opp(1, ("Detected", 20), ("Proposed", 19), ("Merged", 16), ("Verified", 5), savings=100, realized=80),
        opp(2, ("Detected", 6), ("Proposed", 5), ("Merged", 2), savings=50),
        opp(3, ("Detected", 10), ("Proposed", 9), ("Rejected", 3), savings=30, type_="orphan-volume"),
        opp(4, ("Detected", 12), ("Proposed", 11), ("Rejected", 8), savings=20, type_="orphan-volume"),
        opp(5, ("NeedsApproval", 4), savings=300, ns=EVIL, team=EVIL),
        opp(6, ("Detected", 3), ("Proposed", 2), savings=40),
    ]


def test_headline_figures_and_the_gap(ledger):
    r = build_report(ReportData(opportunities=ledger), period="weekly", end=END)
    h = r.headline
    assert h["estimatedMonthly"] == 100 + 50 + 300 + 40 and h["realizedMonthly"] == 80
    assert h["gap"] == {"estimated": 490, "realized": 80, "gap": 410, "notMerged": 340, "mergedNotVerified": 50,
                        "verifiedBelowEstimate": 20}
    assert h["realizedInPeriod"] == 80 and h["estimatedDetectedInPeriod"] == 50 + 300 + 40
    assert h["period"] == {"detected": 3, "proposed": 2, "merged": 1, "verified": 1, "rejected": 1}
    assert h["cumulative"] == {"detected": 6, "proposed": 5, "merged": 2, "verified": 1, "rejected": 2}
    assert r.start == END - timedelta(days=7)


def test_lead_time_median_and_p90(ledger):
    r = build_report(ReportData(opportunities=ledger), period="monthly", end=END)
    assert r.start == datetime(2026, 10, 30, tzinfo=UTC)
    lead = r.section("lead-time").data
    assert lead["cumulative"] == {"count": 2, "medianDays": 4.0, "p90Days": 4.0}    # 4 days (o1) and 4 days (o2)
    assert percentile([1.0, 2.0, 3.0, 4.0, 10.0], 0.9) == 10.0 and percentile([], 0.5) is None


def test_recommendations_approve_next_and_repeated_rejections(ledger):
    rec = build_report(ReportData(opportunities=ledger), period="weekly", end=END).section("recommendations").data
    assert [x["id"] for x in rec["approveNext"]] == ["o5", "o6"]                    # largest savings first
    assert {"by": "type", "key": "orphan-volume", "rejections": 2} in rec["repeatedlyRejected"]
    assert all(x["key"] != "rightsize-cpu" for x in rec["repeatedlyRejected"])


def test_sections_appear_only_with_their_data(ledger):
    empty = build_report(ReportData(), period="weekly", end=END)
    assert empty.sections == () and empty.headline["opportunities"] == 0
    assert "No data for this period" in render_html(empty)
    only = build_report(ReportData(opportunities=ledger), period="weekly", end=END)
    assert [s.id for s in only.sections] == ["headline", "activity", "breakdowns", "top-open", "trends", "lead-time",
                                             "recommendations"]
    spend = SpendSeries(date(2026, 11, 1), np.full(29, 10.0))
    fc = Forecast(method="linear", backtest_mape=0.05,
                  points=[ForecastPoint(date(2026, 11, 30) + timedelta(days=i), 10.0, 8.0, 12.0) for i in range(31)])
    full = build_report(ReportData(budgets=[BudgetLine("team/b", 100.0, 120.0, "Exceeded", 150.0, "payments")],
                                   spend=spend, forecast=fc), period="weekly", end=END)
    assert [s.id for s in full.sections] == ["budgets", "forecast"]
    assert full.section("forecast").data["total"] == 310.0
    assert "team/b: Exceeded" in full.section("budgets").lines[0]


def test_trends_week_over_week(ledger):
    t = build_report(ReportData(opportunities=ledger), period="weekly", end=END).section("trends")
    assert len(t.data["labels"]) == 8 and t.data["realized"][-1] == 80 and t.data["counts"][-1]["detected"] == 3
    assert t.lines[0] == "detected: 3 this week, +1 week over week"               # 3 against 2 (o3, o4)


def test_an_unknown_period_is_refused(ledger):
    with pytest.raises(ConfigError, match="weekly or monthly"):
        build_report(ReportData(opportunities=ledger), period="daily", end=END)


def test_html_escapes_names_and_references_nothing_outside(ledger):
    html = render_html(build_report(ReportData(opportunities=ledger, source=EVIL, notes=[EVIL]),
                                    period="weekly", end=END))
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html
    assert set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html)) <= {"html", "head", "meta", "title", "style", "body", "header", "h1",
                                                      "h2", "p", "div", "b", "main", "section", "figure", "figcaption",
                                                      "svg", "line", "text", "rect", "circle", "polyline", "span",
                                                      "i", "table", "caption", "thead", "tbody", "tr", "th", "td"}
    clean = render_html(build_report(ReportData(opportunities=ledger[:4] + ledger[5:]), period="weekly", end=END))
    assert "://" not in clean                             # no URL (PR links as text): no CDN, no link, no xmlns
    assert not re.search(r"\b(src|href)\s*=|@import|url\(", clean)
    assert "@media print" in html and "github.com/acme/gitops/pull/6" in html
    svgs = re.findall(r'<svg class="chart chart-(\w+)"[^>]*data-points="(\d+)"[^>]*>(.*?)</svg>', html, re.S)
    assert {k for k, _, _ in svgs} == {"bar", "line", "stacked"}
    assert all(body.count('class="datum') == int(n) for _, n, body in svgs)


def test_json_shape(ledger):
    doc = render_json(build_report(ReportData(opportunities=ledger), period="weekly", end=END))
    json.dumps(doc, allow_nan=False)
    assert doc["schema"] == SCHEMA == "finops.report/v1"
    assert set(doc) == {"schema", "title", "period", "start", "end", "persona", "source", "notes", "headline",
                        "sections"}
    assert doc["start"] == "2026-11-23T00:00:00+00:00" and doc["headline"]["gap"]["notMerged"] == 340
    for s in doc["sections"]:
        assert set(s) == {"id", "title", "lines", "data", "charts", "tables"}
        for c in s["charts"]:
            assert c["kind"] in ("bar", "line", "stacked") and all(len(x["values"]) == len(c["labels"])
                                                                  for x in c["series"])
        for t in s["tables"]:
            assert all(len(row) == len(t["columns"]) for row in t["rows"])


def test_markdown_is_short_and_escaped(ledger):
    text = render_markdown(build_report(ReportData(opportunities=ledger * 5, notes=[EVIL]), period="weekly", end=END))
    assert len(text.splitlines()) <= 40
    assert "<script>" not in text and "\\<script\\>" in text
    assert "Approve next" in text
