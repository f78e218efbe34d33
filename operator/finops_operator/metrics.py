"""The operator's own Prometheus metrics (served on /metrics by ``finops run``).

Besides the run metrics: the process (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, open fds, start time: prometheus_client's
process collector), Python's garbage collector and version, and
``finops_policy_last_success_timestamp_seconds`` per policy, for an alert such as
``time() - finops_policy_last_success_timestamp_seconds > 2 * 86400``.
"""
from __future__ import annotations

from prometheus_client import (CollectorRegistry, Counter, Gauge, GCCollector, Histogram, PlatformCollector,
                               ProcessCollector, start_http_server)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

RUNS = Counter("finops_policy_runs_total", "Policy runs, by policy and result (success|error)",
               ["policy", "result"], registry=REGISTRY)
LAST_SUCCESS = Gauge("finops_policy_last_success_timestamp_seconds",
                     "When the policy's last successful run finished (Unix time)", ["policy"], registry=REGISTRY)
RUN_SECONDS = Histogram("finops_policy_run_duration_seconds", "Wall time of one policy run", ["policy"],
                        buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600), registry=REGISTRY)
FINDINGS = Gauge("finops_findings", "Findings of the last run, by policy, type and verdict",
                 ["policy", "type", "verdict"], registry=REGISTRY)
SAVINGS = Gauge("finops_estimated_monthly_savings_dollars",
                "Estimated monthly savings of the last run's allowed findings", ["policy"], registry=REGISTRY)
ERRORS = Counter("finops_errors_total", "Errors by policy and stage (inventory|usage|scan|publish|ledger)",
                 ["policy", "stage"], registry=REGISTRY)
PULL_REQUESTS = Counter("finops_pull_requests_total", "Pull requests opened or updated", ["policy", "action"],
                        registry=REGISTRY)
QUERIES = Counter("finops_datasource_requests_total", "Requests made to data sources", ["policy", "source"],
                  registry=REGISTRY)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Start the /metrics HTTP server in a background thread."""
    start_http_server(port, addr=addr, registry=REGISTRY)
