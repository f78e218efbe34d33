"""What health is computed from: typed, whatever is present (each part may be missing)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ledger import Opportunity
from ..models.costs import Allocation, UsageHours

BY = ("team", "namespace")


@dataclass(frozen=True, slots=True)
class BudgetStanding:
    """One Budget as health sees it (from its evaluation or its status)."""

    name: str                                 # namespace/name
    state: str                                # OK | Warning | ForecastExceeded | Exceeded (budgets.State values)
    spend: float                              # USD so far in the period
    amount: float                             # USD per period
    elapsed: float                            # share of the period elapsed, 0..1
    teams: tuple[str, ...] = ()               # spec.scope.teams
    namespaces: tuple[str, ...] = ()          # spec.scope.namespaces

    def covers(self, by: str, subject: str) -> bool:
        return subject in (self.teams if by == "team" else self.namespaces)


@dataclass(slots=True)
class HealthData:
    """The inputs present. ``usage`` gives used vs requested; ``allocation`` the cost weights, idle and volumes;
    ``opportunities`` the ledger; ``budgets`` the budgets with their scope."""

    allocation: Allocation | None = None
    usage: UsageHours | None = None
    opportunities: list[Opportunity] | None = None
    budgets: list[BudgetStanding] | None = None
    team_label: str = "team"                  # the policy's spec.allocation.teamLabel
    notes: list[str] = field(default_factory=list)
