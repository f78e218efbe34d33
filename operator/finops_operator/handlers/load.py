"""Import every handler module so kopf registers them (``kopf run -m finops_operator.handlers.load``)."""
from __future__ import annotations

from . import budgets, health, notifications, opportunities, policies, reports, startup

__all__ = ["budgets", "health", "notifications", "opportunities", "policies", "reports", "startup"]
