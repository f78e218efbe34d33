"""Plain data that flows through the money loop.

    ClusterState (inventory)  +  usage summaries  ->  detectors  ->  Finding
    Finding  ->  guardrails  ->  Decision  ->  plan  ->  ChangeSet  ->  branch / PR

Units everywhere: CPU in cores (float), memory and disk in bytes (int) unless a
field name says otherwise (``size_gib``), money in USD per month (float), time
as timezone-aware UTC ``datetime``. Nothing here does I/O.

Three modules (:mod:`.inventory`, :mod:`.usage`, :mod:`.findings`); import from
``finops_operator.models``.
"""
from .costs import (CURRENCY, Allocation, Bill, BillLine, Charge, ChargeKind, ClaimSlot, ContainerSlot, CostCategory,
                    NodePrice, NodeSlot, PriceSource, UsageHours)
from .findings import (Change, ChangeSet, Decision, EditKind, EditTarget, FileEdit, Finding, FindingType, Reason,
                       Target, TargetKind, Verdict)
from .inventory import (HPA, PDB, ConsolidationPolicy, Container, ContainerRole, DeploySource, DisruptionBudget, Node,
                        NodeGroup, NodePool, Pod, Resources, Volume, VolumeSource, Workload, WorkloadRef, pod_requests)
from .insights import Category, Evidence, Insight, Persona, Priority
from .spend import Anomaly, AnomalyKind, Forecast, ForecastPoint, Severity, SpendSeries
from .usage import ClusterState, ContainerKey, ContainerUsage, DaySummary, UsageStats, Window

__all__ = [
    "CURRENCY", "Allocation", "Bill", "BillLine", "Charge", "ChargeKind", "ClaimSlot", "ContainerSlot", "CostCategory",
    "NodePrice", "NodeSlot", "PriceSource", "UsageHours",
    "Category", "Evidence", "Insight", "Persona", "Priority",
    "Anomaly", "AnomalyKind", "Forecast", "ForecastPoint", "Severity", "SpendSeries",
    "HPA", "PDB", "Change", "ChangeSet", "ClusterState", "ConsolidationPolicy", "Container",
    "ContainerKey", "ContainerRole", "ContainerUsage", "DaySummary", "Decision", "DeploySource", "DisruptionBudget", "EditKind",
    "EditTarget", "FileEdit", "Finding", "FindingType", "Node", "NodeGroup", "NodePool", "Pod", "Reason", "Resources",
    "Target", "TargetKind", "UsageStats", "Verdict", "Volume", "VolumeSource", "Window", "Workload", "WorkloadRef",
    "pod_requests",
]
