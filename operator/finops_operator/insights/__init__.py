"""Insights for every persona, computed from whatever data is present (pure: no I/O).

    from finops_operator.insights import InsightData, generate
    insights = generate(InsightData(spend=series, allocation=allocation, business={"orders": orders}),
                        personas=[Persona.CFO], min_priority=Priority.MEDIUM)

Generators per persona (:mod:`.cfo`, :mod:`.engineer`, :mod:`.finance`, :mod:`.business`), each returning
nothing when its data is absent; plugins through the entry point group ``finops_operator.insights``
(:mod:`.registry`); the priority rules in :mod:`.common`. Insights come back highest priority first,
then by impact (USD/month), then by id; an id is stable for the same generator and subject, so the same
finding dedups across runs.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..models.insights import Category, Insight, Persona, Priority
from .common import insight_id, top
from .data import BudgetView, InsightData
from .registry import BUILTINS, GROUP, Generator, generators, plugins, run

__all__ = ["BUILTINS", "GROUP", "BudgetView", "Generator", "InsightData", "filter_insights", "generate",
           "generators", "insight_id", "plugins", "top_per_persona"]


def generate(data: InsightData, *, personas: Iterable[Persona] | None = None, min_priority: Priority | None = None,
             categories: Iterable[Category] | None = None, since: datetime | None = None,
             until: datetime | None = None) -> list[Insight]:
    """Every generator's insights for ``data`` (built-ins and plugins), filtered, deduplicated by id, sorted."""
    found: dict[str, Insight] = {}
    for name, fn in generators().items():
        for insight in run(name, fn, data):
            found.setdefault(insight.id, insight)
    return filter_insights(list(found.values()), personas=personas, min_priority=min_priority,
                           categories=categories, since=since, until=until)


def filter_insights(insights: Iterable[Insight], *, personas: Iterable[Persona] | None = None,
                    min_priority: Priority | None = None, categories: Iterable[Category] | None = None,
                    since: datetime | None = None, until: datetime | None = None) -> list[Insight]:
    """Keep the insights of these personas, at least this priority, in these categories, created in
    ``[since, until)`` (an insight without a time passes a time filter); sorted by :func:`.common.top`."""
    wanted = set(personas) if personas is not None else None
    kinds = set(categories) if categories is not None else None
    kept = [i for i in insights
            if (wanted is None or i.persona in wanted)
            and (min_priority is None or i.priority.at_least(min_priority))
            and (kinds is None or i.category in kinds)
            and (since is None or i.created is None or i.created >= since)
            and (until is None or i.created is None or i.created < until)]
    return top(kept)


def top_per_persona(insights: Iterable[Insight]) -> dict[Persona, Insight]:
    """The first (highest) insight of each persona that has one."""
    out: dict[Persona, Insight] = {}
    for insight in top(list(insights)):
        out.setdefault(insight.persona, insight)
    return out
