"""Pricing: regional price books, user overrides, live-price resolution and cost allocation (pure; no cloud calls)."""
from .allocation import (Rates, cluster_rates, container_monthly_cost, cpu_monthly_cost, cpu_request_savings,
                         default_rates, memory_monthly_cost, memory_request_savings, monthly, node_rates,
                         split_price)
from .catalog import HOURS_PER_MONTH, InstancePrice, PriceBook, VolumePrice
from .live import LivePrices, LiveQuote, Pricing, SpotQuotes, book_for_state
from .overrides import PriceOverrides, apply_overrides, custom_book
from .tables import bundled_regions

__all__ = ["HOURS_PER_MONTH", "InstancePrice", "LivePrices", "LiveQuote", "PriceBook", "PriceOverrides", "Pricing",
           "Rates", "SpotQuotes", "VolumePrice", "apply_overrides", "book_for_state", "bundled_regions",
           "cluster_rates", "container_monthly_cost", "cpu_monthly_cost", "cpu_request_savings", "custom_book",
           "default_rates", "memory_monthly_cost", "memory_request_savings", "monthly", "node_rates", "split_price"]
