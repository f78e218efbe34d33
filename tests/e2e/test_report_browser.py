"""The HTML report in a real browser (headless Chromium): no console errors, its SVG charts drawn with one
element per data point, a screenshot written (under pytest's tmp dir and copied to tests/artifacts/)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from finops_operator.cli.main import main
from tests.support.browser import open_page

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SVG = re.compile(r'<svg class="chart chart-(\w+)"[^>]*data-points="(\d+)"[^>]*>(.*?)</svg>', re.S)


def check_rendered(html: Path, shot: Path, *, sections: set[str]) -> list[tuple[str, int, int]]:
    page = open_page(html, screenshot=shot)
    assert page.console == [], f"console messages from {html}: {page.console}"
    assert "<main>" in page.dom and "</html>" in page.dom
    for section in sections:
        assert f'<section id="{section}">' in page.dom
    charts = [(kind, int(points), body.count('class="datum')) for kind, points, body in SVG.findall(page.dom)]
    assert charts, "no SVG chart in the rendered DOM"
    assert {kind for kind, _, _ in charts} == {"bar", "line", "stacked"}
    for kind, points, drawn in charts:
        assert drawn == points > 0, f"a {kind} chart drew {drawn} of its {points} data points"
    assert page.dom.count("<title>") > sum(p for _, p, _ in charts)           # every datum carries a tooltip
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    return charts


def test_the_browser_helper_reports_console_errors(tmp_path):
    """The check cannot pass vacuously: a page that throws is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><p>x</p><script>undefinedFn();</script></body></html>')
    page = open_page(bad)
    assert any("ReferenceError" in m for m in page.console), page.log[-2000:]


def test_the_report_renders_with_charts_and_no_errors(tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", "--period", "weekly", "--output", "html", "--out", str(out)]) == 0
    doc = tmp_path / "report.json"
    assert main(["report", "--period", "weekly", "--output", "json", "--out", str(doc)]) == 0
    expected = {s["id"]: sum(sum(v is not None for v in x["values"]) for c in s["charts"] for x in c["series"])
                for s in json.loads(doc.read_text())["sections"]}
    charts = check_rendered(out, tmp_path / "report-weekly.png",
                            sections={"headline", "activity", "breakdowns", "trends", "lead-time", "spend", "budgets", "forecast",
                                      "health", "insights"})
    assert sum(points for _, points, _ in charts) == sum(expected.values())


def test_the_monthly_report_renders(tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", "--period", "monthly", "--out", str(out)]) == 0
    check_rendered(out, tmp_path / "report-monthly.png", sections={"headline", "trends"})


def test_the_demo_writes_a_report_that_renders(tmp_path, capsys):
    workdir = tmp_path / "demo"
    assert main(["demo", "--workdir", str(workdir)]) == 0
    report = workdir / "report.html"
    assert str(report) in capsys.readouterr().out.replace("\n", "")
    check_rendered(report, tmp_path / "demo-report.png", sections={"headline", "recommendations", "insights"})
    assert "This is the demo" in report.read_text()


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
