"""``spec.allocation``: how idle and cluster-wide costs are handed out, and which label names a team.

    allocation:
      idle: Report          # Report: one IDLE row per node | Share: added to containers by their cost
      shared: Report        # Report: SHARED rows | Even: per namespace | ByCPU | ByCost
      teamLabel: team       # the pod label that names the owning team
"""
from __future__ import annotations

from enum import Enum

from pydantic import Field

from ..settings_base import SettingsModel

# a Kubernetes label key: an optional DNS-subdomain prefix and "/", then the name
LABEL_KEY = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
             r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class IdlePolicy(str, Enum):
    REPORT = "Report"      # idle stays its own row per node
    SHARE = "Share"        # shared out to containers in proportion to their cost


class SharedPolicy(str, Enum):
    REPORT = "Report"      # control plane, load balancers, NAT stay SHARED rows
    EVEN = "Even"          # the same amount per namespace (then by cost within it)
    BY_CPU = "ByCPU"       # in proportion to each container's CPU cost
    BY_COST = "ByCost"     # in proportion to each container's cost


class AllocationSettings(SettingsModel):
    """How allocation hands out what no container asked for: node idle and cluster-wide costs."""

    idle: IdlePolicy = Field(default=IdlePolicy.REPORT, description=(
        "Report: each node's idle cost (capacity no container was charged for) is its own row; Share: it is "
        "added to the containers in proportion to their cost."))
    shared: SharedPolicy = Field(default=SharedPolicy.REPORT, description=(
        "Cluster-wide costs (EKS control plane, load balancers, NAT gateways). Report: their own rows; Even: the "
        "same amount per namespace; ByCPU: by each container's CPU cost; ByCost: by each container's cost."))
    team_label: str = Field(default="team", min_length=1, max_length=317, pattern=LABEL_KEY, description=(
        "Pod label naming the team that owns a workload (app.kubernetes.io/part-of when it is absent)."))
