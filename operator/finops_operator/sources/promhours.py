"""Pure half of the hourly allocation reader: parse hourly range answers, accumulate rows, build UsageHours.

:mod:`.promalloc` sends the queries; this module never does I/O. Every answer
is a range query evaluated at ``hour start + 3599 s`` (``HOUR_EVAL_OFFSET``)
with ``[1h]`` windows, so each point describes the samples of one hour
``[h, h + 3600)`` whether the server's range selectors are closed (Prometheus
2) or left-open (Prometheus 3). A point's time maps to one hour index; a time
off that grid, a value that is not a number, a negative or infinite value, or
an answer larger than the bounds below is a :class:`DataSourceError` (never a
crash, never a silent zero). NaN is "no data" (dropped).

Rows are ``(namespace, pod, container, node)``: a pod that the scheduler put
back on another node under the same name (a StatefulSet pod) is a new row.
Which node a pod is on in an hour comes from ``kube_pod_info`` and, failing
that, the ``node`` label of its requests. Requests of an hour without a node
(Pending pods) are dropped: an unscheduled pod costs nothing. Usage of an
hour without a known node stays, with ``node_of = -1``.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..errors import DataSourceError
from ..models.costs import ClaimSlot, ContainerSlot, NodeSlot, UsageHours
from .kubernetes import (CAPACITY_LABELS, INSTANCE_TYPE_LABELS, NODE_GROUP_LABELS, ZONE_LABEL, Inventory,
                         instance_id_from_provider_id, node_identity)
from .promstats import Owners

HOUR = 3600
HOUR_EVAL_OFFSET = HOUR - 1          # evaluate [1h] windows at h + 3599: the samples of [h, h + 3600)
MAX_SERIES_PER_ANSWER = 250_000      # one hourly answer (a one-day chunk of every container is ~2 per container)
MAX_LABELS = 64                      # labels of one series (our queries aggregate to at most ~12)
MAX_LABEL_VALUE = 1024               # characters (Kubernetes names are at most 253)
MAX_CELLS = 40_000_000               # container rows x hours (4 float64 matrices: 1.3 GB at the bound)
CONTAINER_MATRICES = ("cpu_request", "cpu_usage", "memory_request", "memory_usage")
GIB = 2**30

Labels = dict[str, str]
Series = tuple[Labels, np.ndarray, np.ndarray]       # labels, hour indexes, values


def ksm_label(name: str) -> str:
    """The kube-state-metrics label of a Kubernetes label (``label_`` + name with [^a-zA-Z0-9_] -> _)."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


# kube_node_labels labels read for a node's identity, and the Kubernetes label each stands for.
NODE_LABELS = {ksm_label(k): k for k in (*INSTANCE_TYPE_LABELS, *NODE_GROUP_LABELS, *CAPACITY_LABELS, ZONE_LABEL)}


@dataclass(frozen=True, slots=True)
class Grid:
    """The hours of a window: ``hours[i]`` is an hour start (epoch seconds)."""

    hours: np.ndarray

    def index(self, times: np.ndarray, *, source: str, what: str) -> np.ndarray:
        offset = times - HOUR_EVAL_OFFSET - int(self.hours[0])
        idx = np.floor_divide(offset, HOUR).astype(np.int64)
        bad = (offset % HOUR != 0) | (idx < 0) | (idx >= len(self.hours))
        if bad.any():
            raise DataSourceError(f"the answer to the {what} query has a point at {times[bad][0]!r}, off the hourly "
                                  "grid that was asked for; is this a Prometheus-compatible server?", source=source)
        return idx


def _labels(metric: object, *, source: str, what: str) -> Labels:
    if not isinstance(metric, dict) or len(metric) > MAX_LABELS:
        raise DataSourceError(f"a series in the {what} answer has {type(metric).__name__} labels "
                              f"(a dict of at most {MAX_LABELS} is expected)", source=source)
    for key, value in metric.items():
        if not isinstance(key, str) or not isinstance(value, str) or len(key) > 256 or len(value) > MAX_LABEL_VALUE:
            raise DataSourceError(f"a series in the {what} answer has a label that is not short text: "
                                  f"{str(key)[:80]!r}={str(value)[:80]!r}", source=source)
    return dict(metric)


def parse_matrix(result: object, grid: Grid, *, source: str, what: str) -> dict[str, list[Series]]:
    """Split a range-query answer by its ``stat`` label into (labels, hour indexes, values) per series."""
    if not isinstance(result, list):
        raise DataSourceError(f"the {what} answer is a {type(result).__name__}, not a list of series", source=source)
    if len(result) > MAX_SERIES_PER_ANSWER:
        raise DataSourceError(f"the {what} answer has {len(result)} series, over the bound of "
                              f"{MAX_SERIES_PER_ANSWER}; narrow the scope (namespaces, cluster matcher) or shorten "
                              "the chunk", source=source)
    out: dict[str, list[Series]] = defaultdict(list)
    for item in result:
        labels = _labels(item.get("metric") if isinstance(item, dict) else None, source=source, what=what)
        try:
            points = np.asarray(item.get("values", []), dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError) as exc:
            raise DataSourceError(f"a series in the {what} answer has points that are not [time, number] pairs "
                                  f"({str(exc)[:120]})", source=source) from None
        points = points[~np.isnan(points[:, 1])]
        if not np.isfinite(points).all() or (points[:, 1] < 0).any():
            raise DataSourceError(f"a series in the {what} answer has an infinite or negative value "
                                  f"({str(labels)[:200]})", source=source)
        if len(points):
            idx = grid.index(points[:, 0], source=source, what=what)
            out[labels.pop("stat", "")].append((labels, idx, points[:, 1]))
    return out


class Table:
    """Rows keyed by a tuple, with named ``[rows, hours]`` float matrices (NaN = no data) grown together."""

    def __init__(self, hours: int, names: Iterable[str], *, max_cells: int = MAX_CELLS, source: str = ""):
        self.hours, self.max_cells, self.source = hours, max_cells, source
        self.keys: dict[tuple, int] = {}
        self._m = {name: np.full((16, hours), np.nan) for name in names}

    def row(self, key: tuple) -> int:
        row = self.keys.get(key)
        if row is not None:
            return row
        row = self.keys[key] = len(self.keys)
        if (row + 1) * self.hours > self.max_cells:
            raise DataSourceError(f"more than {row} rows x {self.hours} hours ({self.max_cells} cells); narrow the "
                                  "scope (namespaces) or shorten the window", source=self.source)
        for name, matrix in self._m.items():
            if row >= len(matrix):
                grown = np.full((2 * len(matrix), self.hours), np.nan)
                grown[:len(matrix)] = matrix
                self._m[name] = grown
        return row

    def put(self, name: str, row: int, idx: np.ndarray, values: np.ndarray) -> None:
        self._m[name][row, idx] = values

    def matrix(self, name: str) -> np.ndarray:
        return self._m[name][:len(self.keys)]


@dataclass(slots=True)
class HourlyRows:
    """What the chunks accumulate; :meth:`build` turns it into UsageHours."""

    grid: Grid
    source: str = ""
    containers: Table = field(init=False)
    nodes: Table = field(init=False)
    claims: Table = field(init=False)
    pod_node: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)   # node code per hour, -1 unknown
    node_names: dict[str, int] = field(default_factory=dict)      # node -> code
    node_list: list[str] = field(default_factory=list)            # code -> node
    node_facts: dict[str, dict[str, object]] = field(default_factory=lambda: defaultdict(dict))
    claim_facts: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    pv_facts: dict[str, dict[str, object]] = field(default_factory=lambda: defaultdict(dict))
    owners: Owners = field(default_factory=Owners)

    def __post_init__(self) -> None:
        hours = len(self.grid.hours)
        self.containers = Table(hours, CONTAINER_MATRICES, source=self.source)
        self.nodes = Table(hours, ("present",), source=self.source)
        self.claims = Table(hours, ("present",), source=self.source)

    # ------------------------------------------------------------------ per chunk

    def _code(self, node: str) -> int:
        if node not in self.node_names:
            self.node_names[node] = len(self.node_list)
            self.node_list.append(node)
        return self.node_names[node]

    def _place(self, namespace: str, pod: str, node: str, idx: np.ndarray, *, only_unknown: bool) -> None:
        where = self.pod_node.setdefault((namespace, pod), np.full(len(self.grid.hours), -1, dtype=np.int32))
        if only_unknown:
            idx = idx[where[idx] < 0]
        where[idx] = self._code(node)

    def add_pods(self, series: list[Series]) -> None:
        """``kube_pod_info`` per hour: which node each pod is on."""
        for labels, idx, _ in series:
            if labels.get("node"):
                self._place(labels.get("namespace", ""), labels.get("pod", ""), labels["node"], idx, only_unknown=False)

    def add_requests(self, series: list[Series]) -> None:
        """Requests per container and resource; the ``node`` label places pods kube_pod_info did not."""
        for labels, idx, _ in series:
            if labels.get("node"):
                self._place(labels.get("namespace", ""), labels.get("pod", ""), labels["node"], idx, only_unknown=True)
        for labels, idx, values in series:
            name = {"cpu": "cpu_request", "memory": "memory_request"}.get(labels.get("resource", ""))
            if name:
                self._put_by_node(name, labels, idx, values, keep_unplaced=False)

    def add_usage(self, bundle: dict[str, list[Series]]) -> None:
        for stat, name in (("cpu", "cpu_usage"), ("memory", "memory_usage")):
            for labels, idx, values in bundle.get(stat, []):
                self._put_by_node(name, labels, idx, values, keep_unplaced=True)

    def _put_by_node(self, name: str, labels: Labels, idx: np.ndarray, values: np.ndarray, *,
                     keep_unplaced: bool) -> None:
        ns, pod, container = labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", "")
        where = self.pod_node.get((ns, pod))
        codes = where[idx] if where is not None else np.full(len(idx), -1, dtype=np.int32)
        for code in np.unique(codes):
            if code < 0 and not keep_unplaced:
                continue
            mask = codes == code
            row = self.containers.row((ns, pod, container, self.node_list[code] if code >= 0 else ""))
            self.containers.put(name, row, idx[mask], values[mask])

    def add_nodes(self, bundle: dict[str, list[Series]]) -> None:
        """Presence (allocatable or kube_node_info seen that hour) and the last identity seen."""
        for stat in ("allocatable", "info", "labels"):
            for labels, idx, values in bundle.get(stat, []):
                node = labels.get("node", "")
                if not node:
                    continue
                facts = self.node_facts[node]
                if stat == "allocatable" and labels.get("resource") in ("cpu", "memory"):
                    facts[labels["resource"]] = float(values[-1])
                    self.nodes.put("present", self.nodes.row((node,)), idx, 1.0)
                elif stat == "info":
                    self.nodes.put("present", self.nodes.row((node,)), idx, 1.0)
                    if labels.get("provider_id"):
                        facts["provider_id"] = labels["provider_id"]
                elif stat == "labels":
                    facts.setdefault("labels", {}).update(      # type: ignore[union-attr]
                        {NODE_LABELS[k]: v for k, v in labels.items() if k in NODE_LABELS and v})

    def add_claims(self, bundle: dict[str, list[Series]]) -> None:
        for labels, idx, _ in bundle.get("claim", []):
            key = (labels.get("namespace", ""), labels.get("persistentvolumeclaim", ""))
            self.claims.put("present", self.claims.row(key), idx, 1.0)
            self.claim_facts[key] = {k: labels.get(k, "") for k in ("volumename", "storageclass")}
        for labels, _, values in bundle.get("requested", []):
            key = (labels.get("namespace", ""), labels.get("persistentvolumeclaim", ""))
            self.claim_facts.setdefault(key, {})["requested"] = str(float(values[-1]))
        for labels, _, values in bundle.get("capacity", []):
            self.pv_facts[labels.get("persistentvolume", "")]["capacity"] = float(values[-1])
        for labels, _, _ in bundle.get("pv", []):
            facts = self.pv_facts[labels.get("persistentvolume", "")]
            facts["storageclass"] = labels.get("storageclass", "")
            facts["volume_id"] = labels.get("ebs_volume_id") or labels.get("csi_volume_handle") or ""

    # ------------------------------------------------------------------ result

    def build(self, inventory: Inventory | None = None) -> UsageHours:
        nodes, present = self._node_slots(inventory)
        index = {slot.name: i for i, slot in enumerate(nodes)}
        keys = list(self.containers.keys)
        pods = {(p.namespace, p.name): p for p in (inventory.pods if inventory else [])}
        workloads = {w.ref: w for w in (inventory.workloads if inventory else [])}
        containers = [self._container_slot(ns, pod, container, pods, workloads) for ns, pod, container, _ in keys]
        claims, claim_rows = self._claim_slots()
        return UsageHours(
            hours=self.grid.hours.copy(), nodes=nodes, node_present=present, containers=containers,
            node_of=np.array([index.get(node, -1) for *_, node in keys], dtype=np.int32),
            **{name: self.containers.matrix(name) for name in CONTAINER_MATRICES},
            claims=claims, claim_present=self.claims.matrix("present")[claim_rows] == 1.0)

    def _container_slot(self, ns: str, pod: str, container: str, pods: dict, workloads: dict) -> ContainerSlot:
        ref = self.owners.workload_of(ns, pod)
        known = pods.get((ns, pod))
        if ref.kind == "Pod" and known is not None and known.owner is not None:
            ref = known.owner
        labels = dict(known.labels) if known is not None and known.labels else \
            dict(workloads[ref].labels) if ref in workloads else {}
        return ContainerSlot(ns, pod, container, workload=ref, labels=labels)

    def _node_slots(self, inventory: Inventory | None) -> tuple[list[NodeSlot], np.ndarray]:
        """Nodes Prometheus saw (filled in from the inventory), then inventory nodes it did not see
        (present in the hours a container row on them has data)."""
        known = {n.name: n for n in (inventory.nodes if inventory else [])}
        slots, rows = [], []
        for (name,), row in self.nodes.keys.items():
            facts = self.node_facts.get(name, {})
            kind, group, capacity, zone = node_identity(facts.get("labels") or {})  # type: ignore[arg-type]
            inv = known.get(name)
            slots.append(NodeSlot(
                name=name, instance_type=kind if kind != "unknown" or inv is None else inv.instance_type,
                capacity_type=capacity if facts.get("labels") or inv is None else inv.capacity_type,
                cpu_cores=float(facts.get("cpu", inv.allocatable_cpu if inv else 0.0)),    # type: ignore[arg-type]
                memory_bytes=int(facts.get("memory", inv.allocatable_memory if inv else 0)),  # type: ignore[arg-type]
                instance_id=instance_id_from_provider_id(facts.get("provider_id")) or (inv.instance_id if inv else None),
                zone=zone or (inv.zone if inv else None), node_group=group or (inv.node_group if inv else None)))
            rows.append(self.nodes.matrix("present")[row] == 1.0)
        active = self._active_nodes()
        for name, node in known.items():
            if name not in self.nodes.keys:
                slots.append(NodeSlot(name, node.instance_type, node.capacity_type, node.allocatable_cpu,
                                      node.allocatable_memory, node.instance_id, node.zone, node.node_group))
                rows.append(active.get(name, np.zeros(len(self.grid.hours), dtype=bool)))
        present = np.array(rows, dtype=bool).reshape(len(slots), len(self.grid.hours))
        return slots, present

    def _active_nodes(self) -> dict[str, np.ndarray]:
        active: dict[str, np.ndarray] = {}
        data = np.zeros((len(self.containers.keys), len(self.grid.hours)), dtype=bool)
        for name in CONTAINER_MATRICES:
            data |= ~np.isnan(self.containers.matrix(name))
        for (_, _, _, node), row in self.containers.keys.items():
            if node:
                active[node] = active.get(node, np.zeros(len(self.grid.hours), dtype=bool)) | data[row]
        return active

    def _claim_slots(self) -> tuple[list[ClaimSlot], list[int]]:
        """Claims whose size is known (PV capacity, else the claim's request); others are left out."""
        slots, rows = [], []
        for key, row in self.claims.keys.items():
            facts = self.claim_facts.get(key, {})
            pv = self.pv_facts.get(facts.get("volumename", ""), {})
            size = pv.get("capacity", float(facts["requested"]) if "requested" in facts else math.nan)
            if math.isnan(size):  # type: ignore[arg-type]
                continue
            slots.append(ClaimSlot(key[0], key[1], str(pv.get("volume_id") or facts.get("volumename") or "") or None,
                                   str(facts.get("storageclass") or pv.get("storageclass") or "unknown"),
                                   float(size) / GIB))  # type: ignore[arg-type]
            rows.append(row)
        return slots, rows

