"""The per-object baseline: Robusta KRR's `simple` strategy query pattern in its Prometheus-only mode.

Not KRR itself (it is not installed here): the same HTTP requests, in the same
shapes, with KRR's default concurrency, so Prometheus does the same work. Read
from robusta-dev/krr (Apache-2.0):

- robusta_krr/core/integrations/prometheus/cluster_loader/loaders/double_parent.py
  (listing): one ``count by (namespace, owner_name, replicaset, owner_kind) (kube_replicaset_owner{...})``,
  then per workload ``count by (namespace, owner_name, owner_kind, pod) (kube_pod_owner{...})`` and
  (loaders/base.py) ``count by (container) (kube_pod_container_info{pod=~...})``, and per container
  ``avg by(resource) (kube_pod_container_resource_limits{...})`` and ``..._requests{...}``.
- robusta_krr/core/integrations/prometheus/metrics_service/prometheus_metrics_service.py ``load_pods``
  (per container object): ``kube_replicaset_owner{owner_name, owner_kind, namespace}[<days>d]``,
  ``last_over_time(kube_pod_owner{owner_name=~..., owner_kind="ReplicaSet", namespace}[<days>d])``,
  ``kube_pod_status_phase{phase="Running", pod=~..., namespace} == 1``.
- robusta_krr/core/integrations/prometheus/metrics/cpu.py and memory.py: the simple strategy's four
  loaders, each an instant query (base.py ``query_type = QueryType.Query``): PercentileCPULoader,
  MaxMemoryLoader, CPUAmountLoader, MemoryAmountLoader (shapes below, verbatim but for whitespace).
- robusta_krr/core/models/config.py ``max_workers: int = pd.Field(6, ge=1)``: 6 requests in flight.
- metrics/base.py ``load_data``: duration ``<minutes>m`` (or ``<days>d`` above a day), step ``<seconds>s``.

Deviations, all to fit a backfilled TSDB: instant queries are evaluated at the
window end instead of "now" (the history ends >= 3 h ago); the step is the
data's sample interval (KRR's default 1.25 min step takes ``rate()`` over 75 s,
which holds no two samples of a 5-minute history: the equivalent of
``--timeframe_duration 5``); the percentile is 95 (KRR's current default).
"""
from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import requests

MAX_WORKERS = 6
CPU_PERCENTILE = 95


@dataclass(frozen=True, slots=True)
class KrrObject:
    namespace: str
    name: str
    kind: str
    container: str
    replicasets: tuple[str, ...]


class Client:
    """Instant queries at a fixed time, counted; one pooled session shared by the workers."""

    def __init__(self, url: str, at: int, timeout: float = 900):
        self.url, self.at, self.timeout = url.rstrip("/"), at, timeout
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=MAX_WORKERS, pool_maxsize=MAX_WORKERS * 2)
        self.session.mount("http://", adapter)
        self.requests = 0
        self._lock = threading.Lock()

    def query(self, expr: str) -> list[dict]:
        with self._lock:
            self.requests += 1
        answer = self.session.get(f"{self.url}/api/v1/query", params={"query": expr, "time": self.at},
                                  timeout=self.timeout)
        answer.raise_for_status()
        return answer.json()["data"]["result"]


def _duration(seconds: int) -> str:
    """KRR's PrometheusMetric._step_to_string."""
    return f"{seconds // 86400}d" if seconds > 86400 else f"{seconds // 60}m"


def list_objects(client: Client, pool: ThreadPoolExecutor) -> list[tuple[KrrObject, tuple[str, ...]]]:
    """Prometheus-only listing of Deployments: (object, its pods) per workload container."""
    subowners = client.query('count by (namespace, owner_name, replicaset, owner_kind) (kube_replicaset_owner{'
                             'namespace!="kube-system", owner_kind=~"Deployment|Rollout"})')
    by_owner: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for item in subowners:
        m = item["metric"]
        by_owner[(m["namespace"], m["owner_name"], m["owner_kind"])].append(m["replicaset"])

    def workload(key: tuple[str, str, str]) -> list[tuple[KrrObject, tuple[str, ...]]]:
        (namespace, name, kind), sets = key, tuple(by_owner[key])
        pods = tuple(p["metric"]["pod"] for p in client.query(
            f'count by (namespace, owner_name, owner_kind, pod) (kube_pod_owner{{namespace="{namespace}", '
            f'owner_name=~"{"|".join(sets)}", owner_kind="ReplicaSet"}})'))
        if not pods:
            return []
        regex = "|".join(pods)
        containers = {c["metric"]["container"] for c in client.query(
            f'count by (container) (kube_pod_container_info{{pod=~"{regex}"}})')}
        out = []
        for container in sorted(containers):
            for metric in ("kube_pod_container_resource_limits", "kube_pod_container_resource_requests"):
                client.query(f'avg by(resource) ({metric}{{namespace="{namespace}", pod=~"{regex}", '
                             f'container="{container}"}})')
            out.append((KrrObject(namespace, name, kind, container, sets), pods))
        return out

    return [obj for objs in pool.map(workload, list(by_owner)) for obj in objs]


def _load_pods(client: Client, obj: KrrObject, window_s: int) -> list[str]:
    period = f"{min(window_s // 86400, 32)}d"
    sets = {r["metric"]["replicaset"] for r in client.query(
        f'kube_replicaset_owner{{owner_name="{obj.name}", owner_kind="{obj.kind}", '
        f'namespace="{obj.namespace}"}}[{period}]')}
    pods = [p["metric"]["pod"] for p in client.query(
        f'last_over_time(kube_pod_owner{{owner_name=~"{"|".join(sorted(sets))}", owner_kind="ReplicaSet", '
        f'namespace="{obj.namespace}"}}[{period}])')]
    if pods:
        client.query(f'kube_pod_status_phase{{phase="Running", pod=~"{"|".join(pods)}", '
                     f'namespace="{obj.namespace}"}} == 1')
    return pods


def metric_queries(obj: KrrObject, pods: list[str], duration: str, step: str) -> dict[str, str]:
    """The simple strategy's four loaders for one object (cpu.py, memory.py)."""
    sel = f'namespace="{obj.namespace}", pod=~"{"|".join(pods)}", container="{obj.container}"'
    return {
        "cpu": (f"quantile_over_time({round(CPU_PERCENTILE / 100, 2)}, max(rate(container_cpu_usage_seconds_total"
                f"{{{sel}}}[{step}])) by (container, pod, job)[{duration}:{step}])"),
        "memory": (f"max_over_time(max(container_memory_working_set_bytes{{{sel}}}) by (container, pod, job)"
                   f"[{duration}:{step}])"),
        "cpu_points": (f"count_over_time(max(container_cpu_usage_seconds_total{{{sel}}}) by (container, pod, job)"
                       f"[{duration}:{step}])"),
        "memory_points": (f"count_over_time(max(container_memory_working_set_bytes{{{sel}}}) by (container, pod, "
                          f"job)[{duration}:{step}])"),
    }


def _recommend(client: Client, obj: KrrObject, window_s: int, step_s: int) -> tuple[float, float]:
    pods = _load_pods(client, obj, window_s)
    if not pods:
        return float("nan"), float("nan")
    data = {name: {r["metric"].get("pod", ""): np.array([r["value"]], dtype=np.float64) for r in client.query(q)}
            for name, q in metric_queries(obj, pods, _duration(window_s), f"{step_s}s").items()}
    cpu = np.concatenate([v[:, 1] for v in data["cpu"].values()]) if data["cpu"] else np.array([np.nan])
    memory = max((float(np.max(v[:, 1])) for v in data["memory"].values()), default=float("nan"))
    return float(np.percentile(cpu, CPU_PERCENTILE)), memory * 1.15      # simple.py: memory buffer 15%


def run(url: str, end: int, window_s: int, step_s: int) -> dict:
    """One KRR-pattern scan of every Deployment container; requests made and recommendations computed."""
    client = Client(url, end)
    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        objects = list_objects(client, pool)
        results = list(pool.map(lambda item: _recommend(client, item[0], window_s, step_s), objects))
    found = sum(1 for cpu, mem in results if cpu == cpu and mem == mem)
    return {"requests": client.requests, "objects": len(objects), "recommended": found}
