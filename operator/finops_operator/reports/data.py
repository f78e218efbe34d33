"""What a report draws on: every field optional; a section appears only when its data exists."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..costreport import CostReport
    from ..health import HealthScore
    from ..insights import BudgetView
    from ..ledger import Opportunity
    from ..models.insights import Insight
    from ..models.spend import Anomaly, Forecast, SpendSeries


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget's standing (USD): from an evaluation (:meth:`of_view`) or a Budget's status (live)."""

    name: str                                   # namespace/name of the Budget
    amount: float
    spend: float                                # so far in its period
    state: str                                  # OK | Warning | ForecastExceeded | Exceeded
    forecast: float | None = None               # expected by the period's end
    team: str | None = None
    period: str = ""                            # its period key, e.g. 2026-11

    @classmethod
    def of_view(cls, view: "BudgetView") -> "BudgetLine":
        return cls(view.name, view.amount, view.spend, view.state, view.forecast, view.team, view.period)


@dataclass(slots=True)
class ReportData:
    """Ledger opportunities (with their history), costs, budgets, forecasts, anomalies, health, insights."""

    source: str = "unknown source"
    opportunities: list["Opportunity"] = field(default_factory=list)
    costs_by_team: "CostReport | None" = None
    costs_by_namespace: "CostReport | None" = None
    budgets: list[BudgetLine] = field(default_factory=list)
    spend: "SpendSeries | None" = None          # daily total spend (history)
    forecast: "Forecast | None" = None          # of ``spend``, for the days after it
    anomalies: list["Anomaly"] = field(default_factory=list)
    health: list["HealthScore"] = field(default_factory=list)
    insights: list["Insight"] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
