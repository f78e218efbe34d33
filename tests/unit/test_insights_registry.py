"""The generator registry: plugins through the entry point group, a broken one logged and skipped.

The example plugin (examples/insights_plugin) is made discoverable the way pip installs it: its package
and a ``*.dist-info`` with the ``entry_points.txt`` its pyproject declares, on ``sys.path``.
"""
from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from finops_operator.insights import GROUP, InsightData, generate, plugins, registry
from finops_operator.models.insights import Persona
from tests.support.fixtures_costs import allocation

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "insights_plugin"


def install_example(site: Path) -> None:
    """What `pip install examples/insights_plugin` leaves in site-packages (package + dist-info)."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    shutil.copytree(EXAMPLE / "acme_insights", site / "acme_insights")
    info = site / f"acme_insights-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = [f"[{GROUP}]", *(f"{name} = {target}" for name, target in project["entry-points"][GROUP].items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def example_installed(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    install_example(site)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    sys.modules.pop("acme_insights", None)


def test_the_example_plugin_is_found_and_runs(example_installed):
    assert "acme.top-namespace" in plugins()
    found = generate(InsightData(allocation=allocation()), personas=[Persona.CFO])
    mine = [i for i in found if i.generator == "acme.top-namespace"]
    assert len(mine) == 1 and mine[0].metadata["namespace"] in mine[0].title


class FakeEntryPoint:
    def __init__(self, name, target=None, error=None):
        self.name, self.value, self._target, self._error = name, f"fake:{name}", target, error

    def load(self):
        if self._error:
            raise self._error
        return self._target


def test_a_broken_plugin_is_logged_and_skipped(monkeypatch, caplog):
    def raises(data):
        raise RuntimeError("boom")

    def wrong(data):
        return "not a list"

    from tests.support.fixtures_insights import series
    fakes = [FakeEntryPoint("x.unloadable", error=ImportError("no module acme")),
             FakeEntryPoint("x.raises", raises), FakeEntryPoint("x.wrong", wrong),
             FakeEntryPoint("x.not-callable", 42), FakeEntryPoint("cfo.spend-trend", raises)]   # a built-in's name
    monkeypatch.setattr(registry, "entry_points", lambda group: fakes if group == GROUP else [])
    caplog.set_level(logging.WARNING, logger="finops_operator.insights.registry")
    insights = generate(InsightData(spend=series(100, 130)))
    assert [i.generator for i in insights] == ["cfo.spend-trend"]          # the built-ins still run
    text = caplog.text
    for name, why in (("x.unloadable", "failed to load"), ("x.raises", "boom"), ("x.wrong", "not a list of Insight"),
                      ("x.not-callable", "not callable"), ("cfo.spend-trend", "a built-in generator has that name")):
        assert name in text and why in text, (name, text)


def test_the_cli_runs_the_installed_plugin(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_example(site)
    env_path = f"{site}"
    out = subprocess.run([sys.executable, "-c", "import sys; from finops_operator.cli.main import main; "
                          "sys.exit(main(sys.argv[1:]))", "insights", "--persona", "cfo", "--output", "json"],
                         capture_output=True, text=True, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
                         timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert "acme.top-namespace" in {i["generator"] for i in doc["insights"]}
    assert importlib.metadata.version("finops-operator")          # the operator itself is installed here
