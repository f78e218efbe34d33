"""`finops insights` offline on the demo scenario, the business series, and the end of `finops demo`."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from rich.console import Console

from finops_operator.cli import demo
from finops_operator.cli.common import DEMO_POLICY, DEMO_SCENARIO, load_policy_file
from finops_operator.cli.insights import offline_data
from finops_operator.cli.main import main
from finops_operator.errors import ConfigError
from finops_operator.insights import generate
from finops_operator.models.insights import Persona
from finops_operator.simulator import business_series, load_scenario, parse_scenario, simulate, usage_hours
from finops_operator.simulator.business import BusinessSeriesSpec, BusinessSpec


@pytest.fixture(scope="module")
def sim():
    spec = load_scenario(DEMO_SCENARIO)
    return spec, simulate(spec)


@pytest.fixture(scope="module")
def data(sim):
    spec, simulation = sim
    return offline_data(simulation, load_policy_file(DEMO_POLICY), business=spec.business, seed=spec.seed)


def test_offline_data_holds_every_part(data):
    assert data.spend is not None and len(data.spend.values) == 14
    assert data.spend.total() == pytest.approx(data.allocation.total, rel=1e-6)       # days add up to the window
    namespaces = data.spend_by["namespace"]
    assert sum(s.total() for s in namespaces.values()) == pytest.approx(data.spend.total(), rel=1e-9)
    assert data.forecast.points[-1].day.isoformat() == "2026-12-31"                     # to the quarter's end
    assert data.opportunities and set(data.business) == {"orders", "active_users"}


def test_every_persona_gets_insights_from_the_demo(data):
    insights = generate(data)
    assert {i.persona for i in insights} == set(Persona)
    unit = next(i for i in insights if i.generator == "cfo.unit-economics" and i.metadata["unit"] == "orders")
    assert unit.metadata["cost"] == pytest.approx(data.spend.total())
    assert unit.metadata["units"] == pytest.approx(float(np.nansum(data.business["orders"].values)))
    coverage = next(i for i in insights if i.generator == "cfo.commitments")
    assert coverage.metadata["coverage_percent"] == pytest.approx(60.0, abs=0.5)     # the scenario's plan covers 60%
    assert coverage.metadata["discount"] == pytest.approx(0.28)


def test_cli_json_filters_and_schema(capsys):
    assert main(["insights", "--persona", "engineer", "--min-priority", "medium", "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["apiVersion"] == "finops.insights/v1" and doc["generated"].startswith("2026-11-16")
    assert doc["insights"] and {i["persona"] for i in doc["insights"]} == {"engineer"}
    assert all(i["priority"] in ("medium", "high", "critical") for i in doc["insights"])
    first = doc["insights"][0]
    assert set(first) == {"id", "persona", "title", "description", "priority", "category", "impact",
                          "recommendation", "confidence", "generator", "created", "team", "metadata", "evidence"}


def test_cli_table_with_category_and_budget(capsys):
    assert main(["insights", "--category", "budget", "--budget", "1000"]) == 0
    out = capsys.readouterr().out
    assert "cluster (--budget)" in out and "forecast" in out and "Priority" in out


def test_cli_bad_since_is_a_one_line_error(capsys):
    assert main(["insights", "--since", "yesterday"]) == 2
    assert "--since 'yesterday' is not a date" in capsys.readouterr().err


def test_demo_ends_with_the_top_insight_per_persona(sim):
    spec, simulation = sim
    console = Console(record=True, width=200)
    demo.show_top_insights(console, simulation, load_policy_file(DEMO_POLICY), spec)
    text = console.export_text()
    assert "Top insight per persona" in text
    rows = re.findall(r"^│ (low|medium|high|critical) +│ (\w+) +│", text, flags=re.MULTILINE)
    assert sorted(persona for _, persona in rows) == sorted(p.value for p in Persona)   # one row each


# --------------------------------------------------------------------------- business series


def test_business_series_follow_traffic_and_are_seeded(sim):
    spec, simulation = sim
    usage = usage_hours(simulation)
    flat = BusinessSpec((BusinessSeriesSpec("orders", 10.0, ("search",), noise=0.0),))
    orders = business_series(usage, flat)["orders"].values
    rows = [i for i, c in enumerate(usage.containers) if c.namespace == "search"]
    traffic = np.nansum(usage.cpu_usage[rows], axis=0).reshape(-1, 24).sum(axis=1)
    assert orders == pytest.approx(np.round(10.0 * traffic))
    noisy = BusinessSpec((BusinessSeriesSpec("orders", 10.0, noise=0.05),), seed=3)
    assert np.array_equal(business_series(usage, noisy)["orders"].values, business_series(usage, noisy)["orders"].values)
    grow = BusinessSpec((BusinessSeriesSpec("orders", 10.0, ("search",), noise=0.0, daily_growth=0.1),))
    assert business_series(usage, grow)["orders"].values[-1] == pytest.approx(orders[-1] * 1.1 ** 13, rel=1e-3)


def test_scenario_business_block_is_validated():
    base = {"cluster": "c", "workloads": [{"kind": "Deployment", "namespace": "a", "name": "w", "replicas": 1,
                                           "containers": [{"name": "x", "requests": {"cpu": "1", "memory": "1Gi"},
                                                           "cpu": {"pattern": "steady", "base": 0.5},
                                                           "memory": {"pattern": "steady", "base": "100Mi"}}]}]}
    spec = parse_scenario({**base, "business": {"seed": 5, "series": [{"name": "orders", "perCoreHour": 3}]}})
    assert spec.business == BusinessSpec((BusinessSeriesSpec("orders", 3.0),), seed=5)
    assert parse_scenario(base).business is None
    with pytest.raises(ConfigError, match=r"business.series\[0\].noise"):
        parse_scenario({**base, "business": {"series": [{"name": "orders", "perCoreHour": 3, "noise": 0.9}]}})
    with pytest.raises(ConfigError, match="duplicate series name 'orders'"):
        parse_scenario({**base, "business": {"series": [{"name": "orders", "perCoreHour": 1},
                                                        {"name": "orders", "perCoreHour": 2}]}})


def test_cli_live_needs_kubeconfig_with_prometheus(capsys):
    assert main(["insights", "--prometheus", "http://localhost:9"]) == 2
    assert "add --kubeconfig" in capsys.readouterr().err
