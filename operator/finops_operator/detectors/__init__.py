"""Waste detectors: pure functions over a ClusterState (see :mod:`.base`).

Importing this package registers every built-in detector in :data:`REGISTRY`.
"""
from . import cpu, freeze, karpenter, memory, nodes, volumes  # noqa: F401  (register)
from .base import REGISTRY, Detector, DetectorResult, Grouping, Skip, register, run_all, type_spec

__all__ = ["REGISTRY", "Detector", "DetectorResult", "Grouping", "Skip", "register", "run_all", "type_spec"]
