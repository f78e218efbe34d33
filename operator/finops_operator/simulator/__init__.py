"""Scenario simulator: realistic, seeded cluster usage for the demo, tests and benchmarks.

    spec = load_scenario("scenario.yaml")          # or parse_scenario(dict) / generate_scenario(...)
    sim = simulate(spec)                             # inventory + per-container series
    save_snapshot("cluster.npz", sim.snapshot())     # finops_operator.snapshot
    write_openmetrics(sim, open("metrics.om", "w"))  # for promtool tsdb create-blocks-from openmetrics
    bill = simulate_bill(sim, PriceBook.load())      # hourly bill lines: nodes (SP, spot), EBS, EKS, LB, NAT
    write_cost_explorer_json(bill, "ce.json")        # GetCostAndUsage-shaped, daily by SERVICE
    hours = usage_hours(sim)                         # allocation input: hourly requests/usage per pod container
    business_series(hours, spec.business, seed=spec.seed)   # orders, active users per day (unit economics)
"""
from __future__ import annotations

from .billing import simulate_bill
from .billspec import BillingSpec, SavingsPlan
from .business import BusinessSpec, business_series
from .cejson import write_cost_explorer_json
from .engine import Simulation, simulate, timeline
from .generate import generate_scenario
from .openmetrics import write_openmetrics
from .patterns import PATTERNS
from .scenario import ScenarioSpec, load_scenario, parse_scenario
from .usagehours import usage_hours

__all__ = ["PATTERNS", "BillingSpec", "BusinessSpec", "business_series", "SavingsPlan", "ScenarioSpec", "Simulation", "generate_scenario",
           "load_scenario", "parse_scenario", "simulate", "simulate_bill", "timeline", "usage_hours",
           "write_cost_explorer_json", "write_openmetrics"]
