"""Import every handler module so kopf registers them (``kopf run -m finops_operator.handlers.load``)."""
from __future__ import annotations

from . import budgets, notifications, opportunities, policies, startup

__all__ = ["budgets", "notifications", "opportunities", "policies", "startup"]
