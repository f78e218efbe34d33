"""Cost allocation (pure): UsageHours + node prices + the bill -> Allocation that adds up to the bill.

    from finops_operator.allocation import allocate, effective_rates, AllocationSettings
    allocation = allocate(usage, prices, book, bill=bill, settings=AllocationSettings(idle="Share"))
    allocation.grouped("namespace")   # {("allocated", "shop"): [...], ("idle", ""): [...], ("shared", ""): [...]}
"""
from .engine import allocate, allocate_and_rate
from .rates import effective_rates
from .settings import AllocationSettings, IdlePolicy, SharedPolicy

__all__ = ["AllocationSettings", "IdlePolicy", "SharedPolicy", "allocate", "allocate_and_rate", "effective_rates"]
