"""Release a FreezeGrowth: close the budget's open ResourceQuota pull requests once spend is back under the threshold.

    released = release_freeze(ledger, provider, budget_namespace="finance", budget_name="payments",
                              pr_period_key="2026-11", current_period_key="2026-12",
                              spend=120.0, threshold_amount=5000.0, now=now)

The decision is :func:`..detectors.freeze.should_release` (pure: a later period than the
one that fired the freeze, and spend under the threshold amount). The side effects, here
at the edge: each open pull request of the budget's change sets (``freeze-growth-<budget>``
and its blast-radius parts) is closed through the provider with the reason in its body
(``Provider.close``, which marks it as the operator's own withdrawal, so a later freeze
opens a new PR instead of meeting the reopen rule), and its opportunities move
Proposed -> Superseded (``Ledger.withdrawn``). A merged freeze stays: the quota is live
and removing it is a change for people to propose.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ..detectors import type_spec
from ..detectors.freeze import NAME, group_of, should_release
from ..errors import FinOpsError
from ..ledger import Ledger, Opportunity, OpportunityState
from ..models import FindingType
from .plan import slug
from .providers import Provider, PullRequestRef

log = logging.getLogger(__name__)


@dataclass
class Released:
    """One branch the release closed (or failed to: ``error``; retried on the next evaluation)."""

    branch: str
    ref: PullRequestRef | None
    opportunities: list[str] = field(default_factory=list)
    error: str | None = None


def change_set_base(budget_namespace: str, budget_name: str) -> str:
    """The change set id of a budget's freeze (parts add ``-2``, ``-3``): the plan's rule for grouped types."""
    grouping = type_spec(FindingType.FREEZE_GROWTH).grouping
    return f"{grouping.change_set}-{slug(group_of(budget_namespace, budget_name))}"


def open_freezes(ledger: Ledger, budget_namespace: str, budget_name: str) -> dict[str, list[Opportunity]]:
    """Branch -> the budget's Proposed freeze opportunities on it."""
    pattern = re.compile(re.escape(change_set_base(budget_namespace, budget_name)) + r"(-[0-9]+)?")
    found: dict[str, list[Opportunity]] = {}
    for opp in ledger.opportunities:
        if opp.detector == NAME and opp.state == OpportunityState.PROPOSED and opp.branch \
                and opp.change_set and pattern.fullmatch(opp.change_set):
            found.setdefault(opp.branch, []).append(opp)
    return found


def release_reason(budget: str, spend: float | Decimal, threshold_amount: float | Decimal, period_key: str,
                   currency: str = "USD") -> str:
    return (f"budget {budget} spend {Decimal(str(spend)):.2f} {currency} is back under its threshold "
            f"{Decimal(str(threshold_amount)):.2f} {currency} in period {period_key}; the growth freeze is released")


def release_freeze(ledger: Ledger, provider: Provider, *, budget_namespace: str, budget_name: str,
                   pr_period_key: str, current_period_key: str, spend: float | Decimal,
                   threshold_amount: float | Decimal, now: datetime, currency: str = "USD") -> list[Released]:
    """Close the budget's open freeze PRs when :func:`should_release` says so; mutates ``ledger``.

    A branch whose PR is already gone (closed, or its branch deleted) is withdrawn in the ledger
    too; a merged one is left to the pull-request sync. A provider failure is recorded in
    ``Released.error`` and leaves the opportunities Proposed, so the next evaluation retries.
    """
    if not should_release(pr_period_key, current_period_key, spend, threshold_amount):
        return []
    reason = release_reason(group_of(budget_namespace, budget_name), spend, threshold_amount, current_period_key,
                            currency)
    released = []
    for branch, opps in sorted(open_freezes(ledger, budget_namespace, budget_name).items()):
        ids = [o.id for o in opps]
        try:
            ref = provider.close(branch, reason)
            if ref is None:
                ref = provider.status(branch)
        except FinOpsError as exc:
            log.warning("cannot release %s (retried next evaluation): %s", branch, exc)
            released.append(Released(branch, None, ids, str(exc)))
            continue
        if ref is not None and ref.state == "merged":
            continue                                  # the quota is live; the PR sync records the merge
        for opp in opps:
            ledger.withdrawn(opp.id, now, reason)
        released.append(Released(branch, ref, ids))
    return released
