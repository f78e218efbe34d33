"""Team health: bands, weights, renormalisation, trend, the daily schedule, isolation, the stored history, the CLI."""
from __future__ import annotations

import argparse
import base64
import gzip
import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from finops_operator.api import healthjob
from finops_operator.api.healthjob import TeamJob, run_due_teams
from finops_operator.health import (BudgetStanding, HealthData, HealthSettings, HealthWeights, Measure, TeamPlan,
                                    combine, due, health_scores, team_plans, trend)
from finops_operator.health import bands
from finops_operator.health.history import MAX_DAYS, MAX_SUBJECTS, HealthHistory, decode, encode, ran, record
from finops_operator.ledger import Opportunity, OpportunityState
from finops_operator.models.costs import (Allocation, Charge, ChargeKind, ContainerSlot, NodeSlot, UsageHours)
from rich.console import Console

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def usage_of(rows: list[tuple[str, str, float, float, float, float]], hours: int = 4) -> UsageHours:
    """rows: (namespace, team, cpu used, cpu requested, memory used, memory requested), constant each hour."""
    def matrix(i: int) -> np.ndarray:
        return np.array([[r[i]] * hours for r in rows], dtype=float)
    return UsageHours(hours=np.arange(hours, dtype=np.int64) * 3600 + int(T0.timestamp()),
                      nodes=[NodeSlot("n1", "m5.large", "on-demand", 2, 8 << 30)],
                      node_present=np.ones((1, hours), dtype=bool),
                      containers=[ContainerSlot(ns, f"p{i}", "c", labels={"team": team})
                                  for i, (ns, team, *_rest) in enumerate(rows)],
                      node_of=np.zeros(len(rows), dtype=np.int32), cpu_request=matrix(3), cpu_usage=matrix(2),
                      memory_request=matrix(5), memory_usage=matrix(4))


def opp(team: str, state: OpportunityState, estimated: float, realized: float | None = None, *,
        kind: str = "rightsize-cpu", ns: str = "shop") -> Opportunity:
    return Opportunity(id=f"{team}-{state.value}-{estimated}", detector="d", type=kind, target="t", namespace=ns,
                       team=team, cluster="c", state=state, estimated_monthly_savings=estimated, confidence=1,
                       risk=0, fingerprint="f", first_seen=T0, last_seen=T0, realized_monthly_savings=realized)


# --------------------------------------------------------------------------- bands and scores

def test_bands_are_straight_lines_between_the_documented_anchors():
    assert bands.banded(0.5, bands.EFFICIENCY) == 75.0          # halfway from 40% -> 60 to 60% -> 90
    assert bands.banded(0.95, bands.EFFICIENCY) == 100.0
    assert bands.banded(0.0, bands.WASTE) == 100.0 and bands.banded(0.9, bands.WASTE) == 0.0
    assert bands.banded(1.3, bands.PACE) == 54.0
    assert [bands.grade(s)[0] for s in (95, 80, 65, 45, 10)] == ["A", "B", "C", "D", "F"]
    assert bands.grade(None) == ("-", "no data")


def test_efficiency_is_cost_weighted_and_capped():
    usage = usage_of([("shop", "payments", 0.2, 1.0, 9.0, 10.0)])       # CPU 20%, memory 90%
    cheap_memory = Allocation(T0, T0 + timedelta(hours=4), [
        Charge(ChargeKind.CONTAINER, 10.0, namespace="shop", team="payments", cpu_cost=9.0, memory_cost=1.0)], None)
    [score] = health_scores(HealthData(allocation=cheap_memory, usage=usage), "team")
    eff = {c.category: c for c in score.categories}["efficiency"]
    assert eff.value == pytest.approx(0.9 * 0.2 + 0.1 * 0.9, abs=1e-4)            # weighted by $9 CPU, $1 memory
    assert "CPU 20% of requested used" in eff.explanation
    over = usage_of([("shop", "payments", 3.0, 1.0, 30.0, 10.0)])       # usage above requests counts as 100%
    [score] = health_scores(HealthData(usage=over), "team")
    assert score.categories[0].value == 1.0 and "weighted equally" in score.categories[0].explanation


def test_missing_categories_are_left_out_and_the_weights_renormalised():
    h = combine("payments", "team", {"efficiency": Measure(0.5, 80.0, "x"), "waste": Measure(0.1, 60.0, "y"),
                                     "budget": None, "savings": None}, HealthWeights())
    weights = {c.category: c.weight for c in h.categories}
    assert weights == {"efficiency": pytest.approx(35 / 60, abs=1e-4), "waste": pytest.approx(25 / 60, abs=1e-4),
                       "budget": 0.0, "savings": 0.0}
    assert h.score == pytest.approx(80 * 35 / 60 + 60 * 25 / 60, abs=0.1)
    assert "budget, savings left out" in h.renormalised
    nothing = combine("x", "team", {"efficiency": None, "waste": None, "budget": None, "savings": None},
                      HealthWeights())
    assert nothing.score is None and nothing.band == "no data"               # never silently 0 or 100


def test_custom_weights_change_the_score():
    measures = {"efficiency": Measure(0.2, 25.0, ""), "waste": Measure(0.0, 100.0, ""), "budget": None,
                "savings": None}
    assert combine("t", "team", measures, HealthWeights(efficiency=100, waste=0)).score == 25.0
    assert combine("t", "team", measures, HealthWeights(efficiency=0, waste=100)).score == 100.0


def test_waste_splits_node_idle_by_cost_and_counts_orphaned_volumes():
    alloc = Allocation(T0, T0 + timedelta(hours=730), [
        Charge(ChargeKind.CONTAINER, 30.0, namespace="a", team="x", node="n1", cpu_cost=20, memory_cost=10),
        Charge(ChargeKind.CONTAINER, 10.0, namespace="b", team="y", node="n1", cpu_cost=5, memory_cost=5),
        Charge(ChargeKind.IDLE, 40.0, node="n1")], None)
    data = HealthData(allocation=alloc, opportunities=[opp("y", OpportunityState.DETECTED, 10.0,
                                                           kind="orphan-volume", ns="b")])
    waste = {s.subject: s.categories[1] for s in health_scores(data, "team")}
    assert waste["x"].value == pytest.approx(30 / 60, abs=1e-4)                     # $30 of idle on $30 own cost
    assert waste["y"].value == pytest.approx((10 + 10) / (10 + 10 + 10), abs=1e-4)  # idle $10 + orphan $10/month for a month


def test_budget_adherence_uses_state_caps_and_pace():
    on_pace = BudgetStanding("ns/a", "OK", spend=500, amount=1000, elapsed=0.5, teams=("t",))
    fast = BudgetStanding("ns/b", "Warning", spend=650, amount=1000, elapsed=0.5, teams=("u",))
    over = BudgetStanding("ns/c", "Exceeded", spend=1100, amount=1000, elapsed=0.9, teams=("v",))
    scores = {s.subject: s for s in health_scores(HealthData(budgets=[on_pace, fast, over]), "team")}
    assert scores["t"].score == 100.0
    assert scores["u"].categories[2].score == 54.0                       # pace 1.3 -> 54, under the Warning cap 70
    assert scores["v"].score == 0.0 and "ns/c Exceeded" in scores["v"].categories[2].explanation
    assert health_scores(HealthData(budgets=[on_pace]), "namespace") == []   # scoped to a team, not a namespace


def test_savings_realized_and_prs_merged():
    opps = [opp("t", OpportunityState.VERIFIED, 100.0, 80.0), opp("t", OpportunityState.REJECTED, 50.0),
            opp("t", OpportunityState.DETECTED, 10.0)]
    [score] = health_scores(HealthData(opportunities=opps), "team")
    savings = score.categories[3]
    assert savings.value == pytest.approx((0.8 + 0.5) / 2, abs=1e-4)
    assert "1 of 2 pull requests merged" in savings.explanation and "$80.00 of $100.00" in savings.explanation


# --------------------------------------------------------------------------- trend

def test_trend_compares_the_recent_window_with_the_one_before():
    today = date(2026, 11, 30)
    rising = {today - timedelta(days=i): 80.0 - i for i in range(14)}
    t = trend(rising, today, 7)
    assert t.direction == "improving" and t.change == 7.0 and t.window_days == 7
    assert trend({d: 150 - v for d, v in rising.items()}, today, 7).direction == "declining"
    assert trend({today - timedelta(days=i): 70.0 + (i % 2) for i in range(14)}, today, 7).direction == "steady"
    assert trend({today: 50.0}, today, 7).direction == "unknown"


# --------------------------------------------------------------------------- schedule

@pytest.mark.parametrize("zone,utc_hour", [("Europe/Berlin", 5), ("America/New_York", 11), ("Asia/Tokyo", 21),
                                           ("UTC", 6)])
def test_a_team_runs_at_0600_local(zone, utc_hour):
    plan = TeamPlan("t", zone, "06:00")
    day = date(2026, 1, 15) if zone != "Asia/Tokyo" else date(2026, 1, 16)
    at = plan.run_at(day)
    assert at.hour == utc_hour
    assert due(plan, at - timedelta(minutes=1), last_run=None) is None
    assert due(plan, at, last_run=None) == day
    assert due(plan, at + timedelta(hours=3), last_run=day) is None                  # already ran today
    assert due(plan, at + timedelta(hours=3), last_run=day - timedelta(days=1)) == day   # a restart catches up


def test_dst_days():
    berlin = TeamPlan("t", "Europe/Berlin", "06:00")
    assert berlin.run_at(date(2026, 3, 28)) == datetime(2026, 3, 28, 5, tzinfo=UTC)      # CET
    assert berlin.run_at(date(2026, 3, 29)) == datetime(2026, 3, 29, 4, tzinfo=UTC)      # CEST from that day
    assert berlin.run_at(date(2026, 10, 25)) == datetime(2026, 10, 25, 5, tzinfo=UTC)
    gap = TeamPlan("t", "Europe/Berlin", "02:30")                                       # does not exist on 29 March
    assert gap.run_at(date(2026, 3, 29)) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)   # 03:30 CEST
    fold = TeamPlan("t", "America/New_York", "01:30")                                   # twice on 1 November
    assert fold.run_at(date(2026, 11, 1)) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # the first one (EDT)
    now = datetime(2026, 3, 29, 4, 0, tzinfo=UTC)
    assert due(berlin, now, last_run=date(2026, 3, 28)) == date(2026, 3, 29)


def test_team_plans_listed_first_then_every_team_seen_at_the_defaults():
    settings = HealthSettings.model_validate({"timeZone": "Europe/Paris", "teams": [
        {"name": "search", "timeZone": "America/New_York", "time": "07:30"}]})
    plans = team_plans(settings, {"payments", "search"})
    assert plans == [TeamPlan("search", "America/New_York", "07:30"), TeamPlan("payments", "Europe/Paris", "06:00")]


# --------------------------------------------------------------------------- isolation

def test_one_failing_team_never_stops_the_others():
    plans = [TeamPlan(t, "UTC", "06:00") for t in ("a", "b", "c")]
    stored: list[str] = []

    def compute(team):
        if team == "b":
            raise RuntimeError("prometheus down")
        return HealthData(), []

    job = TeamJob(compute=compute, store=lambda team, day, s, i: stored.append(team),
                  insights=lambda d, t, s: ["i1", "i2"], deliver=lambda t, i: 1)
    runs = run_due_teams(plans, datetime(2026, 11, 30, 7, tzinfo=UTC), last_run={"c": date(2026, 11, 30)}, job=job)
    assert [(r.team, r.outcome, r.insights, r.alerts) for r in runs] == [("a", "ok", 2, 1), ("b", "error", 0, 0)]
    assert "prometheus down" in runs[1].error and stored == ["a"]                   # c already ran today


def test_a_teams_insights_come_from_its_own_slice_of_the_data():
    alloc = Allocation(T0, T0 + timedelta(days=14), [
        Charge(ChargeKind.CONTAINER, 900.0, namespace="a", team="x", cpu_cost=800, memory_cost=100),
        Charge(ChargeKind.CONTAINER, 100.0, namespace="b", team="y", cpu_cost=50, memory_cost=50),
        Charge(ChargeKind.IDLE, 400.0, node="n1")], 1400.0)
    opps = [opp("x", OpportunityState.DETECTED, 300.0, ns="a"), opp("y", OpportunityState.DETECTED, 5.0, ns="b")]
    data = HealthData(allocation=alloc, opportunities=opps)
    mine = healthjob.team_slice(data, "y")
    assert [c.team for c in mine.allocation.charges] == ["y"] and [o.team for o in mine.opportunities] == ["y"]
    made = healthjob.make_insights(data, "x", [], T0 + timedelta(days=14))
    assert made and all(i.team in ("x", None) for i in made)
    assert not any("$300" in i.title or "300" in str(i.impact) for i in healthjob.make_insights(data, "y", [], T0))


# --------------------------------------------------------------------------- stored history

def test_history_is_bounded_and_round_trips():
    h = HealthHistory()
    day = date(2026, 1, 1)
    for i in range(MAX_DAYS + 30):
        h = record(h, "team:a", day + timedelta(days=i), 50 + i % 10)
    assert len(h.scores["team:a"]) == MAX_DAYS
    assert min(h.scores["team:a"]) == day + timedelta(days=30)
    for i in range(MAX_SUBJECTS + 5):
        h = record(h, f"namespace:n{i}", day + timedelta(days=i), 1)
    assert len(h.scores) == MAX_SUBJECTS and "namespace:n0" not in h.scores
    h = ran(h, "a", day)
    again = decode(encode(h))
    assert again.scores == h.scores and again.last_run == {"a": day}


def _blob(doc) -> bytes:
    return gzip.compress(json.dumps(doc).encode())


@pytest.mark.parametrize("blob,problem", [
    (b"not gzip", "not gzip"),
    (_blob([1, 2]), "version-1"),
    (_blob({"version": 1, "scores": {"t": {"start": "2026-01-01", "values": [101]}}, "lastRun": {}}), "0-100"),
    (_blob({"version": 1, "scores": {"t": {"start": "x", "values": [1]}}, "lastRun": {}}), "YYYY-MM-DD"),
    (_blob({"version": 1, "scores": {"t": {"start": "2026-01-01", "values": [1] * (MAX_DAYS + 1)}},
            "lastRun": {}}), "more than 400"),
    (_blob({"version": 1, "scores": {}, "lastRun": {"t": "yesterday"}}), "YYYY-MM-DD"),
    (gzip.compress(b"{" + b" " * (9 * 1024 * 1024)), "uncompressed"),
    (_blob({"version": 1, "scores": {}, "lastRun": {}, "insights": {"t": [{"id": 1}]}}), "short strings"),
    (_blob({"version": 1, "scores": {}, "lastRun": {}, "insights": {"t": [{"id": "i", "title": "x" * 301,
                                                                           "priority": "low", "category": "c",
                                                                           "day": "2026-01-01"}]}}), "short strings"),
])
def test_hostile_history_is_refused_with_the_reason(blob, problem):
    with pytest.raises(ValueError, match=problem):
        decode(blob)


# --------------------------------------------------------------------------- CLI

def _args(**kw):
    base = {"by": "team", "output": "json", "snapshot": None, "kubeconfig": None, "prometheus": None,
            "policy": None, "history": "14d"}
    return argparse.Namespace(**{**base, **kw})


def test_cli_json_and_table(capsys):
    from finops_operator.cli.health import run_health
    data = HealthData(usage=usage_of([("shop", "payments", 0.5, 1.0, 5.0, 10.0)]),
                      budgets=[BudgetStanding("ns/b", "OK", 100, 1000, 0.5, teams=("payments",))])
    assert run_health(_args(), Console(), data=data) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "finops.health/v1" and doc["by"] == "team"
    [row] = doc["scores"]
    assert row["subject"] == "payments" and row["grade"] in "ABCDF"
    assert {c["category"]: c["score"] for c in row["categories"]}["waste"] is None
    assert "waste, savings left out" in row["renormalised"]
    console = Console(record=True, width=150)
    run_health(_args(output="table"), console, data=data)
    text = console.export_text()
    assert "FinOps health by team" in text and "payments" in text and "—" in text


def test_cli_on_the_demo_cluster(capsys):
    from finops_operator.cli.main import main
    assert main(["health", "--by", "namespace", "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    subjects = {s["subject"]: s for s in doc["scores"]}
    assert doc["window"]["days"] > 1 and len(subjects) >= 3
    for s in subjects.values():
        assert s["score"] is None or 0 <= s["score"] <= 100
        savings = {c["category"]: c for c in s["categories"]}["savings"]
        assert savings["score"] is None and savings["weight"] == 0.0     # no PR offline: left out, said so


def test_snapshot_scores_equal_the_simulation_scores_and_the_demo_ends_with_the_table(tmp_path, capsys):
    from finops_operator.cli import demo
    from finops_operator.cli.common import DEMO_SCENARIO
    from finops_operator.cli.main import main
    from finops_operator.settings import PolicySettings
    from finops_operator.simulator import load_scenario, simulate
    from finops_operator.snapshot import save_snapshot

    simulation = simulate(load_scenario(DEMO_SCENARIO))
    save_snapshot(tmp_path / "s.npz", simulation.snapshot())
    assert main(["health", "--snapshot", str(tmp_path / "s.npz"), "--output", "json"]) == 0
    from_snapshot = {s["subject"]: s["score"] for s in json.loads(capsys.readouterr().out)["scores"]}
    assert main(["health", "--output", "json"]) == 0
    from_demo = {s["subject"]: s["score"] for s in json.loads(capsys.readouterr().out)["scores"]}
    # the snapshot keeps float32 per-replica series (snapshot.py), so idle moves a little: the same subjects, close
    assert set(from_snapshot) == set(from_demo) and {"payments", "search", "checkout"} <= set(from_demo)
    assert all(abs(from_snapshot[k] - from_demo[k]) < 3 for k in from_demo if from_demo[k] is not None)
    console = Console(record=True, width=160)
    from finops_operator.pipeline import scan
    from finops_operator.usage import state_for_policy
    settings = PolicySettings()
    demo.show_health(console, simulation, settings, scan(state_for_policy(simulation.snapshot(), settings), settings))
    text = console.export_text()
    assert "FinOps health by team" in text
    for team, score in from_demo.items():
        assert any(team in line and (f"{score:.0f}" if score is not None else "—") in line
                   for line in text.splitlines())
