"""Helpers and fixtures for running the real operator against the test control plane.

* :func:`install_chart` — ``helm upgrade --install`` the chart (CRDs from ``crds/`` via kubectl first,
  as the README's install path does) and return the ServiceAccount's kubeconfig.
* :func:`workload_manifests` — Deployments/StatefulSets for a simulator scenario (the same YAML goes
  into the cluster and into the GitOps remote, so the operator can find and edit it).
* :class:`OperatorProcess` — ``finops run`` as a subprocess (start, SIGKILL, restart, log, wait).
* ``e2e_prometheus`` (module) — a real Prometheus backfilled from :data:`E2E_SCENARIO` via the
  simulator's OpenMetrics export.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from finops_operator.simulator import parse_scenario, simulate

from tests.support.kubeprocs import _die_with_parent as die_with_parent  # no orphan operator if pytest is killed
from tests.support.prometheus_server import PrometheusServer, history_end, serve_simulation

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "finops-operator"
CRDS = ROOT / "crds"
CRD_NAMES = ("finopspolicies.finops.dev", "budgets.finops.dev", "savingsopportunities.finops.dev",
             "finopsreports.finops.dev")
SHOP = "e2e-shop"

# A small cluster: web over-requests CPU (1 core for ~0.1 used), db over-requests memory (4Gi for ~1Gi);
# the other resources are sized about right (no finding).
E2E_SCENARIO: dict[str, Any] = {
    "cluster": "e2e", "region": "us-east-1", "days": 7, "stepSeconds": 300, "seed": 5,
    "nodeGroups": [{"name": "general", "instanceType": "m5.xlarge", "count": 2, "zone": "us-east-1a"}],
    "workloads": [
        {"kind": "Deployment", "namespace": SHOP, "name": "web", "replicas": 2,
         "labels": {"app": "web", "team": "shop"},
         "containers": [{"name": "app", "requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"memory": "512Mi"},
                         "cpu": {"pattern": "steady", "base": 0.1, "noise": 0.05},
                         "memory": {"pattern": "steady", "base": "420Mi", "noise": 0.01}}]},
        {"kind": "StatefulSet", "namespace": SHOP, "name": "db", "replicas": 1,
         "labels": {"app": "db", "team": "shop"},
         "containers": [{"name": "postgres", "requests": {"cpu": "250m", "memory": "4Gi"},
                         "limits": {"memory": "4Gi"},
                         "cpu": {"pattern": "steady", "base": 0.2, "noise": 0.02},
                         "memory": {"pattern": "steady", "base": "1Gi", "noise": 0.01}}]},
    ],
}


def scenario(end: datetime) -> dict[str, Any]:
    return {**E2E_SCENARIO, "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _container(spec: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": dict(spec["requests"])}
    if spec.get("limits"):
        resources["limits"] = dict(spec["limits"])
    return {"name": spec["name"], "image": f"registry.example/{spec['name']}:1.0", "resources": resources}


def workload_manifest(w: dict[str, Any]) -> dict[str, Any]:
    """A Deployment/StatefulSet the apiserver accepts, with the scenario's requests and limits."""
    labels = dict(w.get("labels") or {})
    selector = {"app": labels.get("app", w["name"])}
    spec: dict[str, Any] = {"replicas": w.get("replicas", 1), "selector": {"matchLabels": selector},
                            "template": {"metadata": {"labels": {**selector, **labels}},
                                         "spec": {"containers": [_container(c) for c in w["containers"]]}}}
    if w["kind"] == "StatefulSet":
        spec["serviceName"] = w["name"]
    return {"apiVersion": "apps/v1", "kind": w["kind"],
            "metadata": {"name": w["name"], "namespace": w["namespace"], "labels": labels}, "spec": spec}


def workload_manifests(spec: dict[str, Any]) -> dict[str, str]:
    """GitOps file path -> YAML text, one file per workload, with a comment a round-trip edit must keep."""
    out = {}
    for w in spec["workloads"]:
        text = yaml.safe_dump(workload_manifest(w), sort_keys=False)
        out[f"apps/{w['namespace']}/{w['name']}.yaml"] = f"# {w['kind']} {w['name']}: owned by team shop\n{text}"
    return out


def wait_established(kube, names, timeout: float = 60.0) -> None:
    """kubectl wait for CRDs; a CRD created a moment ago has no status.conditions yet, which kubectl
    reports as an error instead of waiting ("conditions accessor error"): ask again until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        proc = kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c}" for c in names),
                            check=False)
        if proc.returncode == 0:
            return
        if "accessor error" not in proc.stderr or time.monotonic() > deadline:
            raise AssertionError(f"CRDs {list(names)} not established: {proc.stderr}")
        time.sleep(0.5)


def seed_cluster(kube, end, *namespaces: str, crds: bool = True) -> dict[str, str]:
    """CRDs (unless the chart installs them), ``namespaces`` and the scenario's workloads (history ending at
    ``end``, as the e2e Prometheus holds it); returns the workload manifests by path for a GitOps remote."""
    if crds:
        kube.kubectl("apply", "-f", str(CRDS))
        wait_established(kube, CRD_NAMES)
    for ns in namespaces:
        if kube.kubectl("get", "namespace", ns, check=False).returncode != 0:
            kube.kubectl("create", "namespace", ns)
    files = workload_manifests(scenario(end))
    kube.kubectl("apply", "-f", "-", input="---\n".join(files.values()))
    return files


def install_chart(kube, release: str, namespace: str, *sets: str) -> Path:
    """CRDs with kubectl, the chart with helm (crds.enabled=false), then the chart ServiceAccount's kubeconfig."""
    kube.kubectl("apply", "-f", str(CRDS))
    wait_established(kube, CRD_NAMES)
    if kube.kubectl("get", "namespace", namespace, check=False).returncode != 0:
        kube.kubectl("create", "namespace", namespace)
    args = ["upgrade", "--install", release, str(CHART), "-n", namespace, "--set", "crds.enabled=false",
            "--set", f"clusterName={release}"]
    for value in sets:
        args += ["--set", value]
    kube.helm(*args)
    return kube.sa_kubeconfig(namespace, f"{release}-finops-operator")


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct unused loopback ports: all held open while chosen, so two calls in a row cannot
    hand out the same port (which left the operator's health and metrics servers on one port)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class OperatorProcess:
    """``finops run`` in a subprocess, logging to ``log``; ``start`` again after ``kill`` to restart."""

    env: dict[str, str]
    log: Path
    namespace: str
    proc: subprocess.Popen | None = None
    health_port: int = 0
    metrics_port: int = 0
    reports_port: int = 0          # the report server's (FINOPS_REPORTS_PORT), unless env names one
    program: tuple[str, ...] = (sys.executable, "-m", "finops_operator.cli.main")   # or an installed `finops`
    cwd: Path | None = None

    def start(self) -> OperatorProcess:
        self.health_port, self.metrics_port, self.reports_port = free_ports(3)
        self.reports_port = int(self.env.get("FINOPS_REPORTS_PORT") or self.reports_port)
        env = {**self.env, "FINOPS_REPORTS_PORT": str(self.reports_port), "FINOPS_REPORTS_ADDRESS": "127.0.0.1"}
        argv = [*self.program, "run", "--standalone",
                "--namespace", self.namespace, "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
                "--metrics-port", str(self.metrics_port)]
        with self.log.open("a") as out:
            out.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n")
            out.flush()
            self.proc = subprocess.Popen(argv, env=env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=die_with_parent)
        return self

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no handler finishes (a crash, an OOM kill, a node loss)."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 90.0, interval: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            if not self.alive():
                raise AssertionError(f"the operator exited ({self.proc.returncode}) while waiting for {what}:\n"
                                     f"{self.text()[-4000:]}")
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; operator log:\n{self.text()[-4000:]}")




def get_json(kube, *args: str) -> Any:
    """``kubectl get <args> -o json``. Tests that poll hard use ``tests.support.kubeget.get_json`` (the same
    answer read with one HTTPS GET): reading at once can see the status a moment before the annotation
    kopf writes in a second request, so a test that reads both after one wait needs to wait for both."""
    return json.loads(kube.kubectl("get", *args, "-o", "json").stdout)


@dataclass
class E2EPrometheus:
    server: PrometheusServer
    end: datetime
    sim: Any

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def e2e_prometheus(tmp_path_factory) -> E2EPrometheus:
    """A real Prometheus holding two days of :data:`E2E_SCENARIO`, ending >= 3 hours ago."""
    end = datetime.fromtimestamp(history_end(), UTC)
    sim = simulate(parse_scenario(scenario(end), source="E2E_SCENARIO"))
    server = serve_simulation(sim, tmp_path_factory.mktemp("e2e-prometheus"), what="the e2e scenario")
    yield E2EPrometheus(server, end, sim)
    server.stop()
