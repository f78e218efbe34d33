"""Containers charged max(request, usage) x rate per hour, node idle, and the unknown-node blend.

Vectorised over container-hours in row chunks (two passes: node demand, then
charges), so the temporaries stay a few chunk-sized matrices whatever the window.

- A container's CPU (cores) and memory (GiB) each hour are ``max(request, usage)``
  (NaN in both = not running; NaN in one = the other).
- When the containers on a node ask for more than its allocatable capacity in an
  hour, their charges that hour are scaled by ``capacity / demand``: a node's cost
  is never exceeded.
- A node's idle is its cost minus what its containers were charged.
- Containers on an unknown node (``node_of == -1``) are charged at the cluster's
  blended rate of that hour, out of the nodes' idle (their cost is in some node's
  bill), at most the idle there is.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..models.costs import UsageHours
from ..units import GI
from .nodecost import NodeCosts

CHUNK = 1024          # container rows per block


@dataclass(slots=True)
class ContainerCosts:
    cpu: np.ndarray                       # [R] USD over the window
    memory: np.ndarray                    # [R] USD
    ran: np.ndarray                       # [R] bool: running at least one hour
    idle_cpu: np.ndarray                  # [N] USD of idle CPU capacity per node
    idle_memory: np.ndarray               # [N] USD of idle memory capacity per node
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> np.ndarray:
        return self.cpu + self.memory

    @property
    def idle(self) -> np.ndarray:
        return self.idle_cpu + self.idle_memory


def _asked(request: np.ndarray, use: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """max(request, usage) per hour, 0 when not running (NaN in both), never negative."""
    out = np.fmax(request, use)
    np.nan_to_num(out, copy=False, nan=0.0)
    np.maximum(out, 0.0, out=out)
    if scale != 1.0:
        out *= scale
    return out


def _blocks(rows: int):
    for start in range(0, rows, CHUNK):
        yield slice(start, min(start + CHUNK, rows))


def _demand(usage: UsageHours, nodes: int, hours: int):
    """Pass 1: CPU cores and GiB asked per node-hour, and per hour on unknown nodes; which rows ran."""
    node_cpu, node_mem = np.zeros((nodes + 1, hours)), np.zeros((nodes + 1, hours))   # last row: unknown
    ran = np.zeros(len(usage.containers), dtype=bool)
    target = np.where(usage.node_of < 0, nodes, usage.node_of).astype(np.intp)
    for block in _blocks(len(usage.containers)):
        cpu = _asked(usage.cpu_request[block], usage.cpu_usage[block])
        mem = _asked(usage.memory_request[block], usage.memory_usage[block], 1.0 / GI)
        np.add.at(node_cpu, target[block], cpu)
        np.add.at(node_mem, target[block], mem)
        ran[block] = ~(np.isnan(usage.cpu_request[block]) & np.isnan(usage.cpu_usage[block])
                       & np.isnan(usage.memory_request[block]) & np.isnan(usage.memory_usage[block])).all(axis=1)
    return node_cpu, node_mem, ran


def container_costs(usage: UsageHours, nc: NodeCosts) -> ContainerCosts:
    n, h = nc.cost.shape
    notes: list[str] = []
    demand_cpu, demand_mem, ran = _demand(usage, n, h)
    cpu_rate, mem_rate = nc.cpu_rate, nc.mem_rate
    fit_cpu = np.minimum(demand_cpu[:n], nc.cores[:, None])
    fit_mem = np.minimum(demand_mem[:n], nc.gib[:, None])
    over = int(((demand_cpu[:n] > fit_cpu + 1e-9) | (demand_mem[:n] > fit_mem + 1e-9)).sum())
    if over:
        notes.append(f"{over} node-hours had containers asking for more than the node's allocatable CPU or memory; "
                     "their charges were scaled down so no node's cost is exceeded")
    with np.errstate(divide="ignore", invalid="ignore"):
        eff_cpu = np.where(demand_cpu[:n] > 0, cpu_rate * fit_cpu / demand_cpu[:n], 0.0)   # USD per core asked
        eff_mem = np.where(demand_mem[:n] > 0, mem_rate * fit_mem / demand_mem[:n], 0.0)
    idle_cpu = cpu_rate * (nc.cores[:, None] - fit_cpu)
    idle_mem = mem_rate * (nc.gib[:, None] - fit_mem)
    # the node's cost that no rate covers (a node whose split failed) is idle too
    idle_cpu += nc.cost - (cpu_rate * nc.cores[:, None] + mem_rate * nc.gib[:, None])
    unknown_cpu, unknown_mem = _unknown_rates(demand_cpu[n], demand_mem[n], cpu_rate, mem_rate, nc,
                                              idle_cpu, idle_mem, notes)
    cpu, mem = _charge(usage, eff_cpu, eff_mem, unknown_cpu, unknown_mem)
    return ContainerCosts(cpu, mem, ran, idle_cpu.sum(axis=1), idle_mem.sum(axis=1), notes)


def _unknown_rates(asked_cpu: np.ndarray, asked_mem: np.ndarray, cpu_rate: np.ndarray, mem_rate: np.ndarray,
                   nc: NodeCosts, idle_cpu: np.ndarray, idle_mem: np.ndarray, notes: list[str]):
    """Hourly blended rates for containers on unknown nodes, paid out of the nodes' idle (changed in place)."""
    if not asked_cpu.any() and not asked_mem.any():
        return np.zeros_like(asked_cpu), np.zeros_like(asked_mem)
    billed = nc.cost > 0
    cores_h = (nc.cores[:, None] * billed).sum(axis=0)
    gib_h = (nc.gib[:, None] * billed).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        blend_cpu = np.where(cores_h > 0, (cpu_rate * nc.cores[:, None]).sum(axis=0) / cores_h, 0.0)
        blend_mem = np.where(gib_h > 0, (mem_rate * nc.gib[:, None]).sum(axis=0) / gib_h, 0.0)
    want = blend_cpu * asked_cpu + blend_mem * asked_mem
    idle = idle_cpu.sum(axis=0) + idle_mem.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.where(want > idle, np.where(want > 0, idle / want, 0.0), 1.0)
        taken = np.where(idle > 0, want * fit / idle, 0.0)
    idle_cpu *= 1.0 - taken
    idle_mem *= 1.0 - taken
    notes.append(f"containers on nodes the usage data does not know were charged ${float((want * fit).sum()):.2f} "
                 "at the cluster's blended hourly rate, out of the nodes' idle cost")
    short = int((fit < 1.0).sum())
    if short:
        notes.append(f"in {short} hours the nodes' idle cost could not cover the containers on unknown nodes at "
                     "the blended rate; they were charged the idle cost there was")
    return blend_cpu * fit, blend_mem * fit


def _charge(usage: UsageHours, eff_cpu: np.ndarray, eff_mem: np.ndarray, unknown_cpu: np.ndarray,
            unknown_mem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: each row's CPU and memory cost over the window."""
    rows = len(usage.containers)
    cpu_cost, mem_cost = np.zeros(rows), np.zeros(rows)
    rate_cpu = np.vstack([eff_cpu, unknown_cpu[None, :]])      # row N: the unknown-node rate
    rate_mem = np.vstack([eff_mem, unknown_mem[None, :]])
    target = np.where(usage.node_of < 0, len(eff_cpu), usage.node_of).astype(np.intp)
    for block in _blocks(rows):
        cpu = _asked(usage.cpu_request[block], usage.cpu_usage[block])
        cpu *= rate_cpu[target[block]]
        cpu_cost[block] = cpu.sum(axis=1)
        mem = _asked(usage.memory_request[block], usage.memory_usage[block], 1.0 / GI)
        mem *= rate_mem[target[block]]
        mem_cost[block] = mem.sum(axis=1)
    return cpu_cost, mem_cost
