"""`finops forecast` as scripts see it: the JSON shape, the table, and bad CSVs refused with the line and the fix."""
from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pytest

from finops_operator.cli.main import main


def write_csv(tmp_path, lines: list[str], name: str = "spend.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def weekly_lines(days: int = 70) -> list[str]:
    rng = np.random.default_rng(0)
    start = date(2024, 3, 4)
    return ["date,cost"] + [f"{start + timedelta(days=i)},{(120 if i % 7 < 5 else 60) + rng.normal(0, 2):.2f}"
                            for i in range(days)]


def test_json_has_exactly_the_documented_shape(tmp_path, capsys):
    lines = weekly_lines()
    lines = [lines[0], *reversed(lines[1:])]                # unsorted dates are fine
    path = write_csv(tmp_path, lines)
    assert main(["forecast", "--csv", str(path), "--horizon", "10", "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"method", "backtestMape", "forecast"}
    assert doc["method"] in ("holt-winters", "seasonal-naive", "moving-average", "moving-average-7")
    assert 0 <= doc["backtestMape"] < 0.1
    assert [p["date"] for p in doc["forecast"]] == [(date(2024, 5, 13) + timedelta(days=i)).isoformat()
                                                   for i in range(10)]
    for p in doc["forecast"]:
        assert set(p) == {"date", "value", "lower", "upper"}
        assert p["lower"] <= p["value"] <= p["upper"]
    weekend = doc["forecast"][5]["value"]                    # 2024-05-18 is a Saturday
    assert 50 < weekend < 70 and 110 < doc["forecast"][0]["value"] < 130


def test_method_option_and_short_history_note(tmp_path, capsys):
    path = write_csv(tmp_path, ["date,cost", "2024-01-01,10", "2024-01-02,", "2024-01-04,14"])
    assert main(["forecast", "--csv", str(path), "--horizon", "2", "--method", "linear", "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["method"] == "moving-average (history of 4 days, fewer than 14)"
    assert doc["backtestMape"] is None
    assert [p["value"] for p in doc["forecast"]] == [12.0, 12.0]
    assert doc["forecast"][0]["date"] == "2024-01-05"


def test_table_output(tmp_path, capsys):
    path = write_csv(tmp_path, weekly_lines())
    assert main(["forecast", "--csv", str(path), "--horizon", "3"]) == 0
    out = capsys.readouterr().out
    assert "2024-05-13 Mon" in out and "95% interval" in out and "Method holt-winters" in out


@pytest.mark.parametrize(("lines", "message"), [
    (["2024-01-01,10"], "line 1: the first line must be a header with the columns date and cost"),
    (["date,cost", "2024-01-01,10", "01/02/2024,11"], "line 3: date '01/02/2024' is not a day; write it as YYYY-MM-DD"),
    (["date,cost", "2024-01-01,$10"], "line 2: cost '$10' is not a number"),
    (["date,cost", "2024-01-01,10", "2024-01-02,-3"], "line 3: cost '-3' must be a finite number, zero or more"),
    (["date,cost", "2024-01-01,10", "2024-01-01,12"], "line 3: 2024-01-01 is already on line 2"),
    (["date,cost", "2024-01-01"], "line 2: has 1 column(s)"),
    (["date,cost"], "no rows after the header"),
])
def test_bad_csv_exits_2_naming_the_line_and_the_fix(tmp_path, capsys, lines, message):
    path = write_csv(tmp_path, lines)
    assert main(["forecast", "--csv", str(path), "--horizon", "5", "--output", "json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in " ".join(captured.err.split())
    assert path.name in captured.err


def test_missing_file_and_bad_horizon(tmp_path, capsys):
    assert main(["forecast", "--csv", str(tmp_path / "nope.csv"), "--horizon", "5"]) == 2
    assert "nope.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["forecast", "--csv", str(tmp_path / "x.csv"), "--horizon", "0"])
    assert info.value.code == 2
