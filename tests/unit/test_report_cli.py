"""`finops report` offline (the demo's state, simulated ledger history) and its live helpers."""
from __future__ import annotations

import json

from finops_operator.api.reportgen import budget_lines
from finops_operator.cli.main import main


def test_json_report_of_the_demo(tmp_path):
    out = tmp_path / "r.json"
    assert main(["report", "--period", "monthly", "--output", "json", "--out", str(out), "--persona", "engineer"]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "finops.report/v1" and doc["period"] == "monthly" and doc["persona"] == "engineer"
    h = doc["headline"]
    assert h["cumulative"]["merged"] > 0 and h["cumulative"]["verified"] > 0 and h["cumulative"]["rejected"] > 0
    assert 0 < h["realizedMonthly"] < h["estimatedMonthly"]
    assert any("simulated" in n for n in doc["notes"])
    budgets = next(s for s in doc["sections"] if s["id"] == "budgets")["data"]["budgets"]
    assert budgets[0]["state"] == "ForecastExceeded" and budgets[0]["amount"] == 1400.0


def test_an_unwritable_out_is_a_usage_error(tmp_path, capsys):
    assert main(["report", "--output", "markdown", "--out", str(tmp_path / "missing" / "r.md")]) == 2
    assert "--out" in capsys.readouterr().err


def test_budget_lines_from_status_skip_unevaluated():
    bodies = [{"metadata": {"namespace": "team-a", "name": "b"}, "spec": {"amount": "500"},
               "status": {"currentSpend": "120.50", "state": "OK", "forecastedSpend": "480.00", "period": "2026-11"}},
              {"metadata": {"namespace": "team-a", "name": "new"}, "spec": {"amount": "100"}, "status": {}}]
    [line] = budget_lines(bodies)
    assert (line.name, line.amount, line.spend, line.forecast, line.state) == ("team-a/b", 500.0, 120.5, 480.0, "OK")
