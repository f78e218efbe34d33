"""What the insight generators read: whatever data is present, each field optional.

    InsightData(state=..., allocation=..., spend=SpendSeries, spend_by={"namespace": {...}},
                budgets=[BudgetView], forecast=Forecast, anomalies=[Anomaly],
                opportunities=[Opportunity], business={"orders": SpendSeries}, now=datetime)

A generator that needs a field which is None (or empty) returns no insight. Nothing here does I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Mapping

from ..models.costs import Allocation, Bill
from ..models.spend import Anomaly, Forecast, SpendSeries
from ..models.usage import ClusterState

if TYPE_CHECKING:                      # type only: the ledger and budgets sit in layers above or beside this one
    from ..budgets.evaluate import Evaluation
    from ..ledger import Opportunity


@dataclass(frozen=True, slots=True)
class BudgetView:
    """One budget as insights need it (built from ``budgets.evaluate.Evaluation`` by :meth:`of`). USD."""

    name: str                          # "namespace/name" of the Budget
    amount: float
    period: str                        # Period.key, e.g. "2026-11"
    period_start: date
    period_end: date                   # exclusive
    spend: float                       # so far in the period
    forecast: float                    # expected by the period's end
    lower: float                       # 95% interval of the forecast
    upper: float
    state: str                         # OK | Warning | ForecastExceeded | Exceeded
    team: str | None = None

    @classmethod
    def of(cls, name: str, amount: float, evaluation: "Evaluation", *, team: str | None = None) -> "BudgetView":
        p = evaluation.period
        return cls(name, amount, p.key, p.start, p.end, evaluation.spend, evaluation.forecast, evaluation.lower,
                   evaluation.upper, evaluation.state.value, team)

    @property
    def variance(self) -> float:
        """Forecast minus amount (positive: over budget by the period's end)."""
        return self.forecast - self.amount


@dataclass(slots=True)
class InsightData:
    """Everything an insight may draw on; every field is optional."""

    state: ClusterState | None = None                   # inventory and usage summaries (OOM kills, throttling)
    allocation: Allocation | None = None                # the window's cost, allocated
    bill: Bill | None = None                            # the window's bill (Savings Plans coverage)
    spend: SpendSeries | None = None                    # daily total spend
    spend_by: Mapping[str, Mapping[str, SpendSeries]] = field(default_factory=dict)  # "namespace"|"team" -> key -> daily
    budgets: list[BudgetView] = field(default_factory=list)
    forecast: Forecast | None = None                    # of ``spend``, for the days after it
    anomalies: list[Anomaly] = field(default_factory=list)
    opportunities: list["Opportunity"] = field(default_factory=list)
    business: Mapping[str, SpendSeries] = field(default_factory=dict)   # e.g. "orders" -> units per day
    now: datetime | None = None
    team: str | None = None                             # set by a per-team run: insights carry it

    @property
    def days(self) -> float | None:
        """Length of the allocation window in days (None without an allocation)."""
        if self.allocation is None:
            return None
        return (self.allocation.end - self.allocation.start).total_seconds() / 86400
