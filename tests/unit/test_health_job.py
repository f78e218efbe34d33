"""The daily team job over a store: idempotent within a local day, scores and the last run kept; budgets read
from their objects; health gauges replaced, not left stale."""
from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
from finops_operator import metrics
from finops_operator.api.healthjob import budget_standings, run_daily
from finops_operator.api.healthstore import HealthOwner, StoredHealth
from finops_operator.health import BudgetStanding, HealthData, HealthSettings, combine, HealthWeights, Measure
from finops_operator.health.history import HealthHistory
from finops_operator.models.costs import ContainerSlot, NodeSlot, UsageHours


class MemoryStore:
    """The HealthStore interface over a dict (the ConfigMap version is tested on a real apiserver)."""

    def __init__(self) -> None:
        self.history, self.writes = HealthHistory(), 0

    def load(self, owner):
        return StoredHealth(self.history, str(self.writes))

    def update(self, owner, change):
        self.history = change(self.history)
        self.writes += 1
        return self.history


def data() -> HealthData:
    hours = 3
    usage = UsageHours(hours=np.arange(hours, dtype=np.int64) * 3600, nodes=[NodeSlot("n", "m5.large", "on-demand", 2, 1)],
                       node_present=np.ones((1, hours), dtype=bool),
                       containers=[ContainerSlot("shop", "p", "c", labels={"team": "payments"}),
                                   ContainerSlot("search", "q", "c", labels={"team": "search"})],
                       node_of=np.zeros(2, dtype=np.int32), cpu_request=np.ones((2, hours)),
                       cpu_usage=np.full((2, hours), 0.5), memory_request=np.ones((2, hours)),
                       memory_usage=np.full((2, hours), 0.5))
    return HealthData(usage=usage)


SETTINGS = HealthSettings.model_validate({"teams": [{"name": "payments", "timeZone": "Europe/Berlin"},
                                                    {"name": "search", "timeZone": "America/New_York"}]})
OWNER = HealthOwner("finops-system", "p")


def NO_CHANNELS(team, insights):
    return 0


def test_each_team_runs_once_per_local_day_and_a_restart_reruns_nothing():
    store = MemoryStore()
    berlin_morning = datetime(2026, 11, 30, 5, 30, tzinfo=UTC)        # 06:30 Berlin, 00:30 New York
    runs = run_daily(store, OWNER, data(), SETTINGS, berlin_morning, deliver=NO_CHANNELS)
    assert [(r.team, r.day, r.outcome) for r in runs] == [("payments", date(2026, 11, 30), "ok")]   # not New York
    assert run_daily(store, OWNER, data(), SETTINGS, berlin_morning, deliver=NO_CHANNELS) == []          # the same day again: nothing
    new_york_morning = datetime(2026, 11, 30, 11, 5, tzinfo=UTC)
    assert [r.team for r in run_daily(store, OWNER, data(), SETTINGS, new_york_morning, deliver=NO_CHANNELS)] == ["search"]
    assert store.history.last_run == {"payments": date(2026, 11, 30), "search": date(2026, 11, 30)}
    assert store.history.scores["team:payments"] == {date(2026, 11, 30): 75.0}
    assert store.history.scores["namespace:shop"][date(2026, 11, 30)] == 75.0


def test_budgets_from_their_objects():
    good = {"metadata": {"name": "b", "namespace": "ns"},
            "spec": {"amount": "1000", "period": "Monthly", "scope": {"teams": ["payments"]}},
            "status": {"state": "Warning", "currentSpend": "600.00", "periodStart": "2026-11-01T00:00:00Z",
                       "periodEnd": "2026-12-01T00:00:00Z"}}
    fresh = {"metadata": {"name": "new", "namespace": "ns"}, "spec": {"amount": "10", "period": "Monthly"}}
    hostile = {**good, "metadata": {"name": "h", "namespace": "ns"},
               "status": {**good["status"], "currentSpend": "nan", "periodEnd": "later"}}
    standings, notes = budget_standings([good, fresh, hostile], datetime(2026, 11, 16, tzinfo=UTC))
    assert standings == [BudgetStanding("ns/b", "Warning", 600.0, 1000.0, 0.5, teams=("payments",))]
    assert len(notes) == 2 and "ns/new" in notes[0] and "ns/h" in notes[1]


def test_health_gauges_are_replaced():
    one = combine("a", "team", {"efficiency": Measure(0.5, 75.0, ""), "waste": None, "budget": None,
                                "savings": None}, HealthWeights())
    two = combine("b", "team", {"efficiency": None, "waste": Measure(0.0, 100.0, ""), "budget": None,
                                "savings": None}, HealthWeights())
    metrics.export_health("ns/p", [one, two])
    value = metrics.REGISTRY.get_sample_value
    assert value("finops_health_score", {"policy": "ns/p", "by": "team", "subject": "a"}) == 75.0
    assert value("finops_health_category_score", {"policy": "ns/p", "by": "team", "subject": "a",
                                                  "category": "efficiency"}) == 75.0
    assert value("finops_health_category_score", {"policy": "ns/p", "by": "team", "subject": "a",
                                                  "category": "waste"}) is None      # no data: no series
    metrics.export_health("ns/p", [two])
    assert value("finops_health_score", {"policy": "ns/p", "by": "team", "subject": "a"}) is None
    assert value("finops_health_score", {"policy": "ns/p", "by": "team", "subject": "b"}) == 100.0


def test_the_job_stores_the_teams_insights_and_hands_them_to_delivery():
    from finops_operator.health.history import decode, encode
    from finops_operator.models.insights import Category, Insight, Persona, Priority
    store, delivered = MemoryStore(), []
    made = [Insight("i1", Persona.ENGINEER, "shop/api requests 4x what it uses", "d", Priority.CRITICAL,
                    Category.EFFICIENCY, team="payments")]
    runs = run_daily(store, OWNER, data(), SETTINGS, datetime(2026, 11, 30, 5, 30, tzinfo=UTC),
                     insights=lambda d, team, s: made if team == "payments" else [],
                     deliver=lambda team, items: delivered.append((team, items)) or 1)
    assert [(r.team, r.insights, r.alerts) for r in runs] == [("payments", 1, 1)]
    assert delivered == [("payments", made)]
    [kept] = decode(encode(store.history)).insights["payments"]
    assert (kept.id, kept.priority, kept.category, kept.day) == ("i1", "critical", "efficiency", date(2026, 11, 30))
