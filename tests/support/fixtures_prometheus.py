"""Fixtures: a real Prometheus backfilled with a known history, and broken Prometheus servers.

``prometheus_history`` (session scope) writes the scenario below as
OpenMetrics, backfills it with promtool and starts Debian's prometheus on a
free loopback port. It FAILS (never skips) when the binaries are missing.

Scenario, 6 hours at a 60 s scrape interval, ending >= 3 h before now:

* ``small``: 3 containers (Deployment web: app + proxy; StatefulSet db-0: postgres)
* ``large``: 50 containers (50 Deployments svc-NN, one container each)
* ``roll``: Deployment api rolled out mid-window (ReplicaSet api-5d8f -> api-7c9b,
  two replicas each), a CronJob report -> Job -> pod, a DaemonSet agent,
  and an HPA on api
* ``edge``: a container that appeared in the last 10% (recent, with ``kube_pod_created``), one with a
  one-hour gap, one whose cAdvisor counters reset, one with restarts, an OOM
  kill and 40% throttling
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pytest

from finops_operator.models import Window
from tests.support.prom_history import History, SimContainer
from tests.support.prometheus_server import (PrometheusServer, SilentServer, closed_port_url, history_end,
                                             binaries_or_fail)

INTERVAL = 60
POINTS = 6 * 60 + 1
MI = 2**20


@dataclass
class BackfilledPrometheus:
    server: PrometheusServer
    history: History

    @property
    def url(self) -> str:
        return self.server.url

    def window(self, step: int = INTERVAL) -> Window:
        return Window(datetime.fromtimestamp(self.history.start, timezone.utc),
                      datetime.fromtimestamp(self.history.end, timezone.utc), step)

    def container(self, namespace: str, pod: str, container: str) -> SimContainer:
        return next(c for c in self.history.containers
                    if (c.namespace, c.pod, c.container) == (namespace, pod, container))


def _series(rng: np.random.Generator, low: float, high: float, alive: slice = slice(None),
            smooth: bool = False) -> np.ndarray:
    """Independent uniform samples in [low, high], or (``smooth``) an 8-hour wave through that range with 5%
    noise: usage that changes little within 5 minutes, as real usage does."""
    values = np.full(POINTS, np.nan)
    if smooth:
        wave = 0.5 + 0.45 * np.sin(2 * np.pi * np.arange(POINTS) / 480 + rng.uniform(0, 2 * np.pi))
        drawn = low + (high - low) * (wave + rng.uniform(-0.05, 0.05, POINTS))
    else:
        drawn = rng.uniform(low, high, POINTS)
    values[alive] = drawn[alive]
    return values


def build_scenario(end: int, seed: int = 7, *, smooth: bool = False) -> History:
    """The history described in the module docstring (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    h = History(start=end - (POINTS - 1) * INTERVAL, interval=INTERVAL, points=POINTS)
    cpu = lambda lo, hi, alive=slice(None): _series(rng, lo, hi, alive, smooth)               # noqa: E731
    mem = lambda lo, hi, alive=slice(None): _series(rng, lo * MI, hi * MI, alive, smooth)     # noqa: E731
    # small: 3 containers
    h.replicaset_owners[("small", "web-6b7c9")] = ("Deployment", "web")
    for name, lo, hi in (("app", 0.2, 0.6), ("proxy", 0.01, 0.05)):
        h.add(SimContainer("small", "web-6b7c9-x2x4q", name, "node-a", cpu(lo, hi), mem(100, 300)),
              ("ReplicaSet", "web-6b7c9"))
    h.add(SimContainer("small", "db-0", "postgres", "node-b", cpu(0.5, 1.5), mem(1000, 1500),
                       cpu_request=2.0, memory_request=2048 * MI, cpu_limit=None, memory_limit=2048 * MI),
          ("StatefulSet", "db"))
    # large: 50 containers
    for i in range(50):
        rs = f"svc-{i:02d}-5f6d7"
        h.replicaset_owners[("large", rs)] = ("Deployment", f"svc-{i:02d}")
        h.add(SimContainer("large", f"{rs}-abcde", "app", "node-c", cpu(0.05, 0.2), mem(50, 80)),
              ("ReplicaSet", rs))
    _roll(h, cpu, mem)
    _edge(h, cpu, mem)
    for node, zone in (("node-a", "a"), ("node-b", "b"), ("node-c", "c"), ("node-d", "a")):
        h.nodes[node] = (4.0, 16 * 2**30, {"topology_kubernetes_io_zone": f"eu-west-1{zone}",
                                           "node_kubernetes_io_instance_type": "m5.xlarge"})
    return h


def _roll(h: History, cpu, mem) -> None:
    half = POINTS // 2
    h.replicaset_owners[("roll", "api-5d8f")] = ("Deployment", "api")
    h.replicaset_owners[("roll", "api-7c9b")] = ("Deployment", "api")
    for rs, alive in (("api-5d8f", slice(0, half)), ("api-7c9b", slice(half, None))):
        for suffix in ("aaaaa", "bbbbb"):
            h.add(SimContainer("roll", f"{rs}-{suffix}", "api", "node-d", cpu(0.3, 0.9, alive), mem(200, 400, alive)),
                  ("ReplicaSet", rs))
    h.job_owners[("roll", "report-29000")] = ("CronJob", "report")
    h.add(SimContainer("roll", "report-29000-q8r7t", "report", "node-d", cpu(1.0, 2.0, slice(60, 120)),
                       mem(500, 600, slice(60, 120))), ("Job", "report-29000"))
    h.add(SimContainer("roll", "agent-k2j3h", "agent", "node-d", cpu(0.02, 0.04), mem(30, 40)),
          ("DaemonSet", "agent"))
    h.hpas.append({"namespace": "roll", "name": "api", "kind": "Deployment", "target": "api", "min": 2,
                   "max": 6, "current": 2, "cpu": 70})


def _edge(h: History, cpu, mem) -> None:
    recent = slice(POINTS - POINTS // 10, None)
    h.replicaset_owners[("edge", "new-1a2b3")] = ("Deployment", "new")
    h.add(SimContainer("edge", "new-1a2b3-zzzzz", "app", "node-a", cpu(0.1, 0.3, recent), mem(100, 120, recent),
                       created=h.start + recent.start * INTERVAL - 30), ("ReplicaSet", "new-1a2b3"))
    gap_cpu, gap_mem = cpu(0.1, 0.3), mem(100, 120)
    gap_cpu[120:180] = np.nan
    gap_mem[120:180] = np.nan
    h.add(SimContainer("edge", "gappy-0", "app", "node-a", gap_cpu, gap_mem), ("StatefulSet", "gappy"))
    h.add(SimContainer("edge", "reset-0", "app", "node-a", cpu(0.4, 0.8), mem(100, 120), counter_reset_at=200),
          ("StatefulSet", "reset"))
    h.add(SimContainer("edge", "crashy-0", "app", "node-b", cpu(0.9, 1.0), mem(400, 500), restart_at=[100, 250],
                       oom_at=250, throttled_share=0.4, cpu_limit=1.0), ("StatefulSet", "crashy"))


@pytest.fixture(scope="session")
def prometheus_history(tmp_path_factory) -> BackfilledPrometheus:
    """A real Prometheus serving the scenario history (see module docstring)."""
    binaries_or_fail()
    workdir = tmp_path_factory.mktemp("prometheus")
    history = build_scenario(history_end())
    server = PrometheusServer(workdir)
    try:
        server.backfill_cached(history.write(workdir / "history.om"))
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start a backfilled Prometheus: {exc}", pytrace=False)
    yield BackfilledPrometheus(server, history)
    server.stop()


@pytest.fixture(scope="session")
def prometheus_rules_history(tmp_path_factory) -> BackfilledPrometheus:
    """The same scenario with smooth usage (:func:`_series`) on its own Prometheus, with the shipped recording
    rules recorded over it (``promtool tsdb create-blocks-from rules``, every 5 minutes from the start)."""
    from finops_operator import bundled
    binaries_or_fail()
    workdir = tmp_path_factory.mktemp("prometheus-rules")
    history = build_scenario(history_end(), smooth=True)
    server = PrometheusServer(workdir)
    try:
        server.backfill(history.write(workdir / "history.om"))
        server.start()
        server.backfill_rules(bundled.path("prometheus-rules.yaml"), history.start, history.end)
    except RuntimeError as exc:
        pytest.fail(f"cannot start a Prometheus with recorded rules: {exc}", pytrace=False)
    yield BackfilledPrometheus(server, history)
    server.stop()


@pytest.fixture
def silent_prometheus():
    """A loopback server that accepts connections and never answers (a hung Prometheus)."""
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def down_prometheus_url() -> str:
    """A loopback URL where nothing listens."""
    return closed_port_url()
