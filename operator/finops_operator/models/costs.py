"""Cost truth: where a price came from, what the bill says, and what allocation hands out.

    PriceBook (region) + overrides + live/spot  ->  NodePrice per node        (pricing/)
    CUR 2.0 (DuckDB | Athena) or Cost Explorer  ->  Bill of BillLines          (sources/cur*.py, sources/aws.py)
    Prometheus history or a snapshot            ->  UsageHours                 (sources/, snapshot)
    UsageHours + NodePrice + Bill               ->  Allocation of Charges      (allocation/)

Money is USD (other currencies are refused where they enter); times are
timezone-aware UTC; allocation works in whole UTC hours (``hours`` are hour
starts, epoch seconds). Nothing here does I/O.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Callable, Mapping

import numpy as np

from .inventory import WorkloadRef

CURRENCY = "USD"


class PriceSource(str, Enum):
    """Where a price came from; every price shown to a person carries one."""

    LIST = "list"              # the bundled, dated price book of the cluster's region
    LIVE = "live"              # the AWS Price List API (pricing:GetProducts), cached
    SPOT = "spot"              # ec2:DescribeSpotPriceHistory for the node's zone, or the bill's spot line
    EFFECTIVE = "effective"    # the bill: Savings Plans / Reserved Instance effective cost, or on-demand billed
    USER = "user"              # a user override (policy spec.pricing or its ConfigMap)


@dataclass(frozen=True, slots=True)
class NodePrice:
    """Hourly price of one node and its provenance."""

    hourly: float
    source: PriceSource
    detail: str                # e.g. "us-east-1 price book (AWS list prices, retrieved 2024-06-01)"


class CostCategory(str, Enum):
    """What a bill line pays for, as allocation treats it."""

    NODE = "node"                      # an EC2 instance that is a cluster node
    VOLUME = "volume"                  # an EBS volume (a PV's backing volume, or unattached)
    CONTROL_PLANE = "control-plane"    # the EKS cluster fee
    LOAD_BALANCER = "load-balancer"    # ELB/ALB/NLB tagged for the cluster
    NAT_GATEWAY = "nat-gateway"        # NAT gateways tagged for the cluster
    OTHER = "other"                    # everything else the scope of the bill holds

    @property
    def shared(self) -> bool:
        """Cluster-wide costs, shared out by the policy's choice (even, by CPU, by cost)."""
        return self in (CostCategory.CONTROL_PLANE, CostCategory.LOAD_BALANCER, CostCategory.NAT_GATEWAY)

    @property
    def service(self) -> str:
        """The CUR product code this category is billed under, for a charge that names no service."""
        return _CATEGORY_SERVICE[self]


_CATEGORY_SERVICE = {CostCategory.NODE: "AmazonEC2", CostCategory.VOLUME: "AmazonEC2",
                     CostCategory.NAT_GATEWAY: "AmazonEC2", CostCategory.CONTROL_PLANE: "AmazonEKS",
                     CostCategory.LOAD_BALANCER: "AWSELB", CostCategory.OTHER: "other"}


@dataclass(frozen=True, slots=True)
class BillLine:
    """Cost of one AWS resource (or one service/tag group) over one period, as billed.

    ``cost`` is the *effective* cost: Savings Plans / RI effective cost where
    covered, the spot price paid, on-demand otherwise. ``list_cost`` is the
    public on-demand cost of the same usage (what a price book would say).
    Cost Explorer lines name no resource (``resource_id == ""``).
    """

    start: datetime                    # inclusive, UTC
    end: datetime                      # exclusive, UTC
    resource_id: str                   # i-..., vol-..., the cluster ARN, a LB/NAT ARN or id; "" when none
    category: CostCategory
    service: str                       # AmazonEC2, AmazonEKS, AWSELB ... (CUR product code / CE SERVICE)
    usage_type: str                    # e.g. "USE1-BoxUsage:m5.xlarge", "" from Cost Explorer
    cost: float
    list_cost: float
    pricing: PriceSource               # EFFECTIVE (SP/RI covered or on-demand billed) or SPOT
    tags: Mapping[str, str] = field(default_factory=dict)
    line_item_type: str = "Usage"      # CUR line_item_line_item_type: Usage | SavingsPlanCoveredUsage | DiscountedUsage


@dataclass(slots=True)
class Bill:
    """Actual cost for a window, from one source. Lines are in USD."""

    source: str                        # "cur:duckdb" | "cur:athena" | "cost-explorer" | "simulated"
    start: datetime
    end: datetime
    lines: list[BillLine]
    currency: str = CURRENCY
    problems: list[str] = field(default_factory=list)   # stated fallbacks ("no NAT gateway tagged ...")

    def total(self, category: CostCategory | None = None) -> float:
        return sum(line.cost for line in self.lines if category is None or line.category is category)

    def by_category(self) -> dict[CostCategory, float]:
        out: dict[CostCategory, float] = defaultdict(float)
        for line in self.lines:
            out[line.category] += line.cost
        return dict(out)

    def clip(self, start: datetime, end: datetime) -> "Bill":
        """The part of the bill inside ``[start, end)``; a line crossing an edge keeps its share by time."""
        lines = []
        for line in self.lines:
            first, last = max(line.start, start), min(line.end, end)
            if last <= first:
                continue
            share = 1.0 if (first, last) == (line.start, line.end) else \
                (last - first) / (line.end - line.start)
            lines.append(line if share == 1.0 else replace(line, start=first, end=last, cost=line.cost * share,
                                                          list_cost=line.list_cost * share))
        return Bill(self.source, max(self.start, start), min(self.end, end), lines, self.currency,
                    list(self.problems))

    def by_resource(self, category: CostCategory | None = None) -> dict[str, float]:
        """Effective cost per resource id (lines without one are left out)."""
        out: dict[str, float] = defaultdict(float)
        for line in self.lines:
            if line.resource_id and (category is None or line.category is category):
                out[line.resource_id] += line.cost
        return dict(out)


# --------------------------------------------------------------------------- allocation input


@dataclass(frozen=True, slots=True)
class NodeSlot:
    """A node as allocation sees it: its size, identity in the bill, and price."""

    name: str
    instance_type: str
    capacity_type: str                 # on-demand | spot
    cpu_cores: float                   # allocatable
    memory_bytes: int                  # allocatable
    instance_id: str | None = None     # i-... from spec.providerID, the key into the bill
    zone: str | None = None
    node_group: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerSlot:
    """One container of one pod on one node (a rescheduled pod is a new slot)."""

    namespace: str
    pod: str
    container: str
    workload: WorkloadRef | None = None
    labels: Mapping[str, str] = field(default_factory=dict)     # the pod's (or its workload's) labels

    @property
    def team(self) -> str:
        return self.team_of("team")

    def team_of(self, label: str) -> str:
        """The team owning this container: its ``label`` (``spec.allocation.teamLabel``), else part-of."""
        return self.labels.get(label) or self.labels.get("app.kubernetes.io/part-of") or "unassigned"


@dataclass(frozen=True, slots=True)
class ClaimSlot:
    """A PersistentVolumeClaim and the volume that backs it (storage is charged to the claim)."""

    namespace: str
    name: str
    volume_id: str | None              # vol-... (EBS) or the PV name
    volume_type: str
    size_gib: float


@dataclass(slots=True)
class UsageHours:
    """Hourly requests and usage of every container, and which nodes existed when.

    Matrices are ``[rows, hours]`` float arrays; NaN means "not running that
    hour". CPU in cores (hourly mean), memory in bytes (hourly mean). A node
    that lived half the window is present (and billed) half the hours.
    """

    hours: np.ndarray                  # int64 [H] hour starts, epoch seconds, ascending, 3600 apart
    nodes: list[NodeSlot]
    node_present: np.ndarray           # bool [N, H]
    containers: list[ContainerSlot]
    node_of: np.ndarray                # int32 [R]: index into nodes, -1 when the node is unknown
    cpu_request: np.ndarray            # [R, H] cores
    cpu_usage: np.ndarray              # [R, H] cores
    memory_request: np.ndarray         # [R, H] bytes
    memory_usage: np.ndarray           # [R, H] bytes
    claims: list[ClaimSlot] = field(default_factory=list)
    claim_present: np.ndarray | None = None   # bool [C, H]; None: every claim all window

    def __post_init__(self) -> None:
        rows, hours = len(self.containers), len(self.hours)
        for name in ("cpu_request", "cpu_usage", "memory_request", "memory_usage"):
            shape = getattr(self, name).shape
            if shape != (rows, hours):
                raise ValueError(f"UsageHours.{name} has shape {shape}, expected ({rows}, {hours})")
        if self.node_present.shape != (len(self.nodes), hours):
            raise ValueError(f"UsageHours.node_present has shape {self.node_present.shape}, "
                             f"expected ({len(self.nodes)}, {hours})")
        if self.node_of.shape != (rows,):
            raise ValueError(f"UsageHours.node_of has shape {self.node_of.shape}, expected ({rows},)")


# --------------------------------------------------------------------------- allocation output


class ChargeKind(str, Enum):
    CONTAINER = "container"            # max(request, usage) x rate on its node
    IDLE = "idle"                      # node capacity no container was charged for
    SHARED = "shared"                  # cluster-wide costs (control plane, LB, NAT) when not shared out
    VOLUME = "volume"                  # a claim's storage
    UNALLOCATED = "unallocated"        # billed, but not tied to anything in the cluster (reported, never dropped)


@dataclass(frozen=True, slots=True)
class Charge:
    """One cost allocated over the window (USD), with the keys people group by."""

    kind: ChargeKind
    cost: float
    namespace: str = ""
    workload: str = ""                 # "Kind/name", "" for non-container charges
    container: str = ""
    node: str = ""
    team: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    cpu_cost: float = 0.0
    memory_cost: float = 0.0
    shared_cost: float = 0.0           # the share of cluster-wide costs added (when the policy shares them)
    idle_cost: float = 0.0             # the share of idle cost added (when the policy shares it)
    category: CostCategory = CostCategory.NODE
    price_source: PriceSource = PriceSource.LIST
    service: str = ""                  # the bill's service (AmazonEC2, AmazonEKS ...) when known; see charge_key
    resource: str = ""                 # the billed resource (i-..., vol-..., an ARN) of a non-container charge


@dataclass(slots=True)
class Allocation:
    """Every dollar of the window, allocated; ``residual`` = bill total - allocated total (reported)."""

    start: datetime
    end: datetime
    charges: list[Charge]
    bill_total: float | None           # None when there is no bill (price book only)
    price_sources: dict[PriceSource, float] = field(default_factory=dict)   # node cost by where its price came from
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(c.cost for c in self.charges)

    @property
    def residual(self) -> float:
        return 0.0 if self.bill_total is None else self.bill_total - self.total

    def group_by(self, key: Callable[[Charge], str]) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for charge in self.charges:
            out[key(charge)] += charge.cost
        return dict(out)

    def grouped(self, by: str) -> dict[tuple[str, str], list[Charge]]:
        """Charges by ``(row kind, key)``: the one grouping rule (``finops costs``, metrics, the demo).

        The row kind is ``allocated`` (containers and volumes) or the charge's kind (``idle``,
        ``shared``, ``unallocated``), so idle and shared costs are never hidden inside a group;
        the key is :func:`charge_key`.
        """
        out: dict[tuple[str, str], list[Charge]] = defaultdict(list)
        for charge in self.charges:
            out[(row_kind(charge), charge_key(charge, by))].append(charge)
        return dict(out)


ALLOCATED = "allocated"
GROUPINGS = ("namespace", "team", "workload", "node", "service", "category")   # and "label:KEY"
_PER_WORKLOAD = (ChargeKind.CONTAINER, ChargeKind.VOLUME)


def row_kind(charge: Charge) -> str:
    """``allocated`` for a container's or a claim's charge, else the charge's kind."""
    return ALLOCATED if charge.kind in _PER_WORKLOAD else charge.kind.value


def charge_key(charge: Charge, by: str) -> str:
    """The value of the grouping ``by`` for one charge.

    namespace / team / workload / ``label:KEY`` belong to containers and claims: an idle,
    shared or unallocated charge has the key "" (one row per kind), as has a charge without the
    label. ``node`` keys idle
    charges by their node too. ``category`` is the bill's category; ``service`` the bill's
    service, or the category's when the charge names none.
    """
    if by == "node":
        return charge.node
    if by == "category":
        return charge.category.value
    if by == "service":
        return charge.service or charge.category.service
    if charge.kind not in _PER_WORKLOAD:
        return ""
    if by == "namespace":
        return charge.namespace
    if by == "team":
        return charge.team or "unassigned"
    if by == "workload":
        return f"{charge.namespace}/{charge.workload or '(no workload)'}"
    if by.startswith("label:") and len(by) > len("label:"):
        return charge.labels.get(by[len("label:"):], "")
    raise ValueError(f"unknown grouping {by!r}; one of {', '.join(GROUPINGS)} or label:KEY")


def hour_starts(start: datetime, end: datetime) -> np.ndarray:
    """Epoch-second hour starts covering [start, end) (start floored, end ceiled to the hour)."""
    first = int(start.timestamp()) // 3600 * 3600
    last = -(-int(end.timestamp()) // 3600) * 3600
    return np.arange(first, last, 3600, dtype=np.int64)
