"""Cost allocation: a node's hourly price split into CPU-core-hours and GiB-hours.

Method (the one OpenCost/Kubecost use for on-demand nodes): a node costs
``P`` per hour and offers ``C`` allocatable cores and ``M`` allocatable GiB.
Reference prices ``c`` (USD per vCPU-hour) and ``g`` (USD per GiB-hour) from the
price table fix only the *ratio* between the two (default 0.031611 : 0.004237,
about 7.5 : 1). Scale them so the node's capacity adds up to its price::

    a = P / (C x c + M x g)
    cpu_core_hour = a x c        memory_gib_hour = a x g

so ``C x cpu_core_hour + M x memory_gib_hour == P`` exactly. Allocatable (not
capacity) is used because the system-reserved part cannot be requested: its
cost is carried by what pods can use. Cluster rates blend the nodes weighted
by their allocatable capacity (total CPU share of price / total allocatable
cores, same for memory). Nodes whose instance type has no price are left out
and listed in :attr:`Rates.unpriced`; with no priced node at all the
table's ``defaultInstanceType`` supplies the rates.

Money helpers: monthly = hourly x 730; container cost = max(request, usage) x
rate; savings of a request change = (before - after) x rate x 730 x replicas.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..models import ClusterState, Node
from ..units import GI
from .catalog import HOURS_PER_MONTH, PriceBook


@dataclass(slots=True)
class Rates:
    """Blended unit prices for a cluster (USD per hour)."""

    cpu_core_hour: float
    memory_gib_hour: float
    nodes_priced: int = 0
    unpriced: list[str] = field(default_factory=list)   # "node (instance type)" without a price
    basis: str = "cluster"                               # "cluster" | "default:<type>"

    @property
    def cpu_core_month(self) -> float:
        return self.cpu_core_hour * HOURS_PER_MONTH

    @property
    def memory_gib_month(self) -> float:
        return self.memory_gib_hour * HOURS_PER_MONTH

    @property
    def memory_byte_hour(self) -> float:
        return self.memory_gib_hour / GI


def split_price(hourly: float, cores: float, memory_gib: float, book: PriceBook) -> tuple[float, float]:
    """Split one node's hourly price into (USD per core-hour, USD per GiB-hour)."""
    if cores <= 0 or memory_gib <= 0:
        raise ConfigError(f"cannot split a node price over {cores} cores and {memory_gib} GiB; "
                          "both must be positive", field="allocatable")
    scale = hourly / (cores * book.cpu_reference + memory_gib * book.memory_reference)
    return scale * book.cpu_reference, scale * book.memory_reference


def node_rates(node: Node, book: PriceBook) -> tuple[float, float]:
    """Per-node (core-hour, GiB-hour) over its allocatable (catalog size when allocatable is unset)."""
    spec = book.instance(node.instance_type)
    cores = node.allocatable_cpu if node.allocatable_cpu > 0 else spec.vcpu
    gib = node.allocatable_memory / GI if node.allocatable_memory > 0 else spec.memory_gib
    return split_price(book.node_hourly(node.instance_type, node.capacity_type), cores, gib, book)


def default_rates(book: PriceBook) -> Rates:
    """Rates of the table's default instance type, for clusters without priced nodes."""
    spec = book.instance(book.default_instance_type)
    cpu, mem = split_price(spec.hourly, spec.vcpu, spec.memory_gib, book)
    return Rates(cpu, mem, 0, [], f"default:{spec.instance_type}")


def cluster_rates(state: ClusterState, book: PriceBook) -> Rates:
    """Allocatable-weighted blend of every priced node's CPU and memory rates."""
    cpu_cost = mem_cost = cores = gib = 0.0
    priced, unpriced = 0, []
    for node in state.nodes:
        if node.instance_type not in book.instances:
            unpriced.append(f"{node.name} ({node.instance_type})")
            continue
        spec = book.instances[node.instance_type]
        node_cores = node.allocatable_cpu if node.allocatable_cpu > 0 else spec.vcpu
        node_gib = node.allocatable_memory / GI if node.allocatable_memory > 0 else spec.memory_gib
        cpu_rate, mem_rate = node_rates(node, book)
        cpu_cost += cpu_rate * node_cores
        mem_cost += mem_rate * node_gib
        cores += node_cores
        gib += node_gib
        priced += 1
    if priced == 0:
        fallback = default_rates(book)
        fallback.unpriced = unpriced
        return fallback
    return Rates(cpu_cost / cores, mem_cost / gib, priced, unpriced, "cluster")


# ---------------------------------------------------------------------- money helpers


def monthly(hourly: float) -> float:
    """Hourly USD to monthly USD (730 hours, the AWS convention)."""
    return hourly * HOURS_PER_MONTH


def cpu_monthly_cost(cores: float, rates: Rates, replicas: float = 1) -> float:
    return cores * rates.cpu_core_hour * HOURS_PER_MONTH * replicas


def memory_monthly_cost(num_bytes: float, rates: Rates, replicas: float = 1) -> float:
    return num_bytes / GI * rates.memory_gib_hour * HOURS_PER_MONTH * replicas


def container_monthly_cost(cpu_request: float | None, cpu_usage: float, memory_request: float | None,
                           memory_usage: float, rates: Rates, replicas: float = 1) -> float:
    """Allocated monthly cost of a container: max(request, usage) for CPU and memory."""
    cpu = max(cpu_request or 0.0, cpu_usage)
    mem = max(memory_request or 0.0, memory_usage)
    return cpu_monthly_cost(cpu, rates, replicas) + memory_monthly_cost(mem, rates, replicas)


def cpu_request_savings(before: float, after: float, rates: Rates, replicas: float = 1) -> float:
    """Monthly savings of a CPU request change in cores (negative for a raise)."""
    return cpu_monthly_cost(before - after, rates, replicas)


def memory_request_savings(before: float, after: float, rates: Rates, replicas: float = 1) -> float:
    """Monthly savings of a memory request change in bytes (negative for a raise)."""
    return memory_monthly_cost(before - after, rates, replicas)
