"""`finops anomalies --csv FILE`: the JSON document, and bad CSV rows exit 2 naming the line and the fix."""
from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pytest
from finops_operator.cli.main import main


def write_csv(path, days: int = 90, spike: int | None = 70) -> None:
    rng = np.random.default_rng(0)
    lines = ["date,cost"]
    for i in range(days):
        day = date(2026, 1, 5) + timedelta(days=i)
        cost = 1000 * (0.6 if day.weekday() >= 5 else 1) * (1 + rng.normal(0, 0.02)) * (2 if i == spike else 1)
        lines.append(f"{day},{cost:.2f}" if i != 40 else f"{day},")       # day 40: no data
    path.write_text("\n".join(lines) + "\n")


def test_json_lists_the_episode(tmp_path, capsys):
    write_csv(tmp_path / "spend.csv")
    assert main(["anomalies", "--csv", str(tmp_path / "spend.csv"), "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (a,) = doc["anomalies"]
    assert (a["date"], a["end"], a["severity"], a["kind"], a["byThreshold"]) == \
        ("2026-03-16", "2026-03-16", "high", "spike", False)
    assert a["actual"] == pytest.approx(2 * a["expected"], rel=0.1)
    assert a["expected"] == round(a["expected"], 2)


def test_a_threshold_adds_days_above_it(tmp_path, capsys):
    write_csv(tmp_path / "spend.csv", spike=None)
    assert main(["anomalies", "--csv", str(tmp_path / "spend.csv"), "--threshold", "1030", "--output", "json"]) == 0
    found = json.loads(capsys.readouterr().out)["anomalies"]
    assert found and all(a["byThreshold"] and a["actual"] > 1030 for a in found)


def test_the_table(tmp_path, capsys):
    write_csv(tmp_path / "spend.csv")
    assert main(["anomalies", "--csv", str(tmp_path / "spend.csv")]) == 0
    out = capsys.readouterr().out
    assert "2026-03-16" in out and "spike" in out and "high" in out


@pytest.mark.parametrize("text, expected", [
    ("day,usd\n2026-01-01,5\n", "line 1: the first line must be a header with the columns date and cost"),
    ("date,cost\n2026-01-01,5\n2026-13-01,4\n", "line 3: date '2026-13-01' is not a day; write it as YYYY-MM-DD"),
    ("date,cost\n2026-01-01,$5\n", "line 2: cost '$5' is not a number"),
    ("date,cost\n2026-01-01,-5\n", "line 2: cost '-5' must be a finite number, zero or more"),
    ("date,cost\n2026-01-01,nan\n", "line 2: cost 'nan' must be a finite number"),
    ("date,cost\n2026-01-01,5\n2026-01-01,6\n", "line 3: 2026-01-01 is already on line 2"),
    ("date,cost\n2026-01-01\n", "line 2: has 1 column(s)"),
    ("date,cost\n", "no rows after the header"),
    ("date,cost\n0001-01-01,1\n2026-01-01,1\n", "the dates span 739,617 days (0001-01-01 to 2026-01-01), over 3,660; check the dates"),
])
def test_bad_rows_exit_2_naming_the_line(tmp_path, capsys, text, expected):
    path = tmp_path / "spend.csv"
    path.write_text(text)
    assert main(["anomalies", "--csv", str(path), "--output", "json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}: {expected}" in " ".join(captured.err.split())


def test_a_missing_file_exits_2(tmp_path, capsys):
    assert main(["anomalies", "--csv", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
