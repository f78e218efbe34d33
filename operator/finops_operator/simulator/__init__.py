"""Scenario simulator: realistic, seeded cluster usage for the demo, tests and benchmarks.

    spec = load_scenario("scenario.yaml")          # or parse_scenario(dict) / generate_scenario(...)
    sim = simulate(spec)                             # inventory + per-container series
    save_snapshot("cluster.npz", sim.snapshot())     # finops_operator.snapshot
    write_openmetrics(sim, open("metrics.om", "w"))  # for promtool tsdb create-blocks-from openmetrics
"""
from __future__ import annotations

from .engine import Simulation, simulate, timeline
from .generate import generate_scenario
from .openmetrics import write_openmetrics
from .patterns import PATTERNS
from .scenario import ScenarioSpec, load_scenario, parse_scenario

__all__ = ["PATTERNS", "ScenarioSpec", "Simulation", "generate_scenario", "load_scenario", "parse_scenario",
           "simulate", "timeline", "write_openmetrics"]
