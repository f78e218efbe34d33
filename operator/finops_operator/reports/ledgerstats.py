"""Figures of the ledger over time (pure): what happened in a span, lead times, the estimated-realized gap.

Events are read from each opportunity's history (its transitions), so a count "in the period" is the
transitions into that state whose time falls in ``[start, end)``; "cumulative" is every such transition
before ``end``. Detected counts first sightings (``first_seen``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from ..ledger import DONE, LIVE, OPEN, Opportunity, OpportunityState

S = OpportunityState
EVENTS = ("detected", "proposed", "merged", "verified", "rejected")
_STATE_OF = {"proposed": S.PROPOSED.value, "merged": S.MERGED.value, "verified": S.VERIFIED.value,
             "rejected": S.REJECTED.value}


def event_times(opp: Opportunity, event: str) -> list[datetime]:
    """When ``opp`` went through ``event`` (a Proposed -> Proposed update is not a new proposal)."""
    if event == "detected":
        return [opp.first_seen]
    state = _STATE_OF[event]
    return [t.at for t in opp.history if t.to_state == state and t.from_state != state]


def count_events(opps: list[Opportunity], start: datetime | None, end: datetime) -> dict[str, int]:
    """Events per kind in ``[start, end)`` (``start`` None: since the beginning)."""
    return {e: sum(1 for o in opps for at in event_times(o, e) if (start is None or at >= start) and at < end)
            for e in EVENTS}


def realized_between(opps: list[Opportunity], start: datetime | None, end: datetime) -> float:
    """Realized USD/month of the changes verified in ``[start, end)``."""
    return round(sum(o.realized_monthly_savings or 0.0 for o in opps if o.state == S.VERIFIED and o.verified_at
                     and (start is None or o.verified_at >= start) and o.verified_at < end), 2)


def estimated_detected_between(opps: list[Opportunity], start: datetime | None, end: datetime) -> float:
    """Estimated USD/month of the live opportunities first seen in ``[start, end)``."""
    return round(sum(o.estimated_monthly_savings for o in opps if o.state in LIVE
                     and (start is None or o.first_seen >= start) and o.first_seen < end), 2)


@dataclass(frozen=True, slots=True)
class Gap:
    """Why estimated and realized savings differ (USD/month)."""

    estimated: float                    # every live opportunity's estimate
    realized: float                     # what verified changes realize
    not_merged: float                   # estimated, still detected / awaiting approval / blocked / PR open
    merged_not_verified: float          # merged, still settling
    verified_below_estimate: float      # estimated - realized of the verified ones (negative: above)

    def as_dict(self) -> dict[str, float]:
        return {"estimated": self.estimated, "realized": self.realized, "gap": round(self.estimated - self.realized, 2),
                "notMerged": self.not_merged, "mergedNotVerified": self.merged_not_verified,
                "verifiedBelowEstimate": self.verified_below_estimate}


def gap(opps: list[Opportunity]) -> Gap:
    def est(states: frozenset) -> float:
        return round(sum(o.estimated_monthly_savings for o in opps if o.state in states), 2)
    verified = [o for o in opps if o.state == S.VERIFIED]
    below = round(sum(o.estimated_monthly_savings - (o.realized_monthly_savings or 0.0) for o in verified), 2)
    realized = round(sum(o.realized_monthly_savings or 0.0 for o in verified), 2)
    return Gap(est(LIVE), realized, est(OPEN), est(frozenset({S.MERGED})), below)


def lead_times(opps: list[Opportunity], start: datetime | None, end: datetime) -> list[float]:
    """Days from first detection to merge, of the changes merged in ``[start, end)``."""
    out = []
    for o in opps:
        if o.merged_at is not None and (start is None or o.merged_at >= start) and o.merged_at < end:
            out.append(round((o.merged_at - o.first_seen) / timedelta(days=1), 2))
    return sorted(out)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of sorted ``values``; None when empty."""
    if not values:
        return None
    rank = max(1, math.ceil(q * len(values) - 1e-9))
    return values[min(len(values), rank) - 1]


def lead_time_summary(values: list[float]) -> dict[str, float | int | None]:
    return {"count": len(values), "medianDays": round(median(values), 1) if values else None,
            "p90Days": percentile(values, 0.9)}


def awaiting(opps: list[Opportunity], limit: int = 5) -> list[Opportunity]:
    """What to approve next: the largest savings awaiting approval or with an open pull request."""
    waiting = [o for o in opps if o.state in (S.NEEDS_APPROVAL, S.PROPOSED)]
    return sorted(waiting, key=lambda o: (-o.estimated_monthly_savings, o.id))[:limit]


def repeated_rejections(opps: list[Opportunity], minimum: int = 2) -> list[tuple[str, str, int]]:
    """(grouping, key, rejections) for each type and namespace rejected at least ``minimum`` times."""
    out = []
    for by in ("type", "namespace"):
        counts: dict[str, int] = {}
        for o in opps:
            n = len(event_times(o, "rejected"))
            if n:
                key = getattr(o, by) or "(none)"
                counts[key] = counts.get(key, 0) + n
        out += [(by, k, n) for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= minimum]
    return out


def top_open(opps: list[Opportunity], limit: int = 10) -> list[Opportunity]:
    return sorted((o for o in opps if o.state in OPEN), key=lambda o: (-o.estimated_monthly_savings, o.id))[:limit]


__all__ = ["DONE", "EVENTS", "Gap", "OPEN", "awaiting", "count_events", "estimated_detected_between", "event_times",
           "gap", "lead_time_summary", "lead_times", "percentile", "realized_between", "repeated_rejections",
           "top_open"]
