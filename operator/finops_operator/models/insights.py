"""Insights for people, and the messages that carry them to where people read.

    data present (allocation, budgets, forecasts, anomalies, ledger, usage)  ->  insights/ generators
    ->  [Insight]  ->  notify/ engine (subscriptions, batching, quiet hours)  ->  Message per channel
    ->  Receipt per delivery

Nothing here does I/O. Money in USD.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Mapping


class Persona(str, Enum):
    CFO = "cfo"
    ENGINEER = "engineer"
    FINANCE = "finance"          # finance analyst
    BUSINESS = "business"        # business lead


class Priority(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: "Priority") -> bool:
        return self.rank >= other.rank


_RANKS = {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2, Priority.CRITICAL: 3}


class Category(str, Enum):
    COST_OPTIMIZATION = "cost-optimization"
    EFFICIENCY = "efficiency"
    BUDGET = "budget"
    ANOMALY = "anomaly"
    FORECAST = "forecast"
    COMPLIANCE = "compliance"
    SECURITY = "security"
    RECOMMENDATION = "recommendation"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What an insight rests on: an opportunity, a budget, a workload, a namespace ... (kind + name)."""

    kind: str                          # "SavingsOpportunity" | "Budget" | "Workload" | "Namespace" | "PullRequest"
    name: str                          # e.g. "finops-system/shop-d1cb01016280e800", "Deployment/shop/web"
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Insight:
    """One finding for one persona, computed from data (never canned text)."""

    id: str                            # stable for the same finding (dedup across runs and restarts)
    persona: Persona
    title: str
    description: str
    priority: Priority
    category: Category
    impact: float | None = None        # USD per month (positive: money at stake), None when not money
    recommendation: str = ""
    confidence: float = 1.0            # 0..1
    generator: str = ""                # the generator that made it (registry name)
    created: datetime | None = None
    team: str | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
