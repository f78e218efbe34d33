"""The operator's own Prometheus metrics (served on /metrics by ``finops run``)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

RUNS = Counter("finops_policy_runs_total", "Policy runs, by policy and result (success|error)",
               ["policy", "result"], registry=REGISTRY)
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
