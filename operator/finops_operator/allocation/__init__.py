"""Cost allocation (pure): UsageHours + node prices + the bill -> Allocation that adds up to the bill.

    from finops_operator.allocation import allocate, effective_rates, group_charges, AllocationSettings
    allocation = allocate(usage, prices, book, bill=bill, settings=AllocationSettings(idle="Share"))
    group_charges(allocation, "namespace")      # {"shop": 812.4, "(idle)": 120.0, "(shared)": 73.0, ...}
"""
from .engine import allocate
from .groups import GROUPINGS, group_charges, grouping
from .rates import effective_rates
from .settings import AllocationSettings, IdlePolicy, SharedPolicy

__all__ = ["GROUPINGS", "AllocationSettings", "IdlePolicy", "SharedPolicy", "allocate", "effective_rates",
           "group_charges", "grouping"]
