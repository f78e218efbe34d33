"""Team health (pure): a 0-100 score per team and per namespace, its breakdown, history and trend.

    scores = health_scores(HealthData(allocation=..., usage=..., opportunities=..., budgets=...), by="team",
                           weights=settings.health.weights)
    scores[0].score, scores[0].grade, scores[0].categories, scores[0].renormalised

Categories (weights from ``spec.health.weights``, default 35 / 25 / 20 / 20), each value mapped to a
score by straight lines between these anchors (:mod:`.bands`; flat outside them):

===========  =============================================================  ==============================
category     value                                                          value -> score
===========  =============================================================  ==============================
efficiency   used / requested CPU and memory over the window (each capped   0 -> 0, 20% -> 25, 40% -> 60,
             at 100%), weighted by the subject's CPU and memory cost        60% -> 90, >= 70% -> 100
waste        (idle + orphaned volume cost) / (own cost + those); idle is    0 -> 100, 10% -> 85,
             the idle share, else node idle split by cost on the node       25% -> 60, 50% -> 20, >= 70% -> 0
budget       per budget scoped to the subject: pace = % of the amount       pace <= 1.0 -> 100, 1.1 -> 80,
             used / % of the period elapsed (at least 10%); the score is    1.25 -> 60, 1.5 -> 30, >= 2 -> 0;
             min(the state's cap, the pace's); budgets amount-weighted      caps OK 100, Warning 70,
                                                                            ForecastExceeded 40, Exceeded 0
savings      mean of realized / estimated savings (verified changes) and   0 -> 0, 25% -> 30, 50% -> 60,
             pull requests merged / opened                                  70% -> 80, >= 90% -> 100
===========  =============================================================  ==============================

Grades: A >= 90 excellent, B >= 75 good, C >= 60 fair, D >= 40 poor, F below 40 critical.

A category without data for a subject (no usage, no allocation, no budget scoped to it, no change
proposed yet) is left out and the others' weights renormalised to 100%; the score says so in
``renormalised``. Without any category there is no score (``None``, band "no data"), never 0 or 100.

Trend (:func:`.score.trend`): the mean of the last ``trendDays`` (default 7) daily scores against the
mean of the ``trendDays`` before; a move under 3 points is steady; under 2 scored days either side it
is unknown. The history keeps at most 400 days per subject (:mod:`.history`).
"""
from .bands import grade
from .categories import Measure
from .history import HealthHistory
from .inputs import BY, BudgetStanding, HealthData
from .schedule import TeamPlan, due, team_plans
from .score import CategoryScore, HealthScore, Trend, combine, health_scores, trend, with_trend
from .settings import DailyJob, HealthSettings, HealthWeights, TeamSchedule

__all__ = ["BY", "BudgetStanding", "CategoryScore", "DailyJob", "HealthData", "HealthHistory", "HealthScore",
           "HealthSettings", "HealthWeights", "Measure", "TeamPlan", "TeamSchedule", "Trend", "combine", "due",
           "grade", "health_scores", "team_plans", "trend", "with_trend"]
