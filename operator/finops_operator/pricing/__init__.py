"""Pricing: the bundled price book and cost allocation (pure; no cloud calls)."""
from .allocation import (Rates, cluster_rates, container_monthly_cost, cpu_monthly_cost, cpu_request_savings,
                         default_rates, memory_monthly_cost, memory_request_savings, monthly, node_rates,
                         split_price)
from .catalog import HOURS_PER_MONTH, InstancePrice, PriceBook, VolumePrice

__all__ = ["HOURS_PER_MONTH", "InstancePrice", "PriceBook", "Rates", "VolumePrice", "cluster_rates",
           "container_monthly_cost", "cpu_monthly_cost", "cpu_request_savings", "default_rates",
           "memory_monthly_cost", "memory_request_savings", "monthly", "node_rates", "split_price"]
