"""An example insight generator: the namespace that costs most, for the CFO.

A generator takes the InsightData the operator built (every field may be None or empty) and returns a
list of Insight; it returns [] when its data is absent. Install next to the operator and it runs with the
built-ins (`finops insights`, the daily job):

    pip install ./examples/insights_plugin
    finops insights --persona cfo
"""
from __future__ import annotations

from finops_operator.insights import InsightData, insight_id
from finops_operator.models.insights import Category, Evidence, Insight, Persona, Priority

NAME = "acme.top-namespace"


def top_namespace(data: InsightData) -> list[Insight]:
    if data.allocation is None or data.allocation.total <= 0:
        return []
    by_namespace = {k: v for k, v in data.allocation.group_by(lambda c: c.namespace).items() if k}
    if not by_namespace:
        return []
    name, cost = max(by_namespace.items(), key=lambda kv: kv[1])
    share = 100 * cost / data.allocation.total
    return [Insight(insight_id(NAME, name), Persona.CFO, f"{name} is the costliest namespace ({share:.0f}%)",
                    f"Namespace {name} cost ${cost:,.2f} of ${data.allocation.total:,.2f} in the window.",
                    Priority.MEDIUM if share > 25 else Priority.LOW, Category.RECOMMENDATION,
                    generator=NAME, created=data.now, metadata={"namespace": name, "cost": cost, "share": share},
                    evidence=(Evidence("Namespace", name),))]
