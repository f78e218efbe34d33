"""`finops scan --kubeconfig [PATH] --prometheus URL --history 14d`: read a live cluster instead of a snapshot.

The same sources the operator uses (one LIST per kind through the kubernetes
client, batched PromQL), for every namespace except the system ones.
"""
from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from rich.console import Console

from ..config import load_config
from ..errors import ConfigError
from ..models import ClusterState, Window
from ..settings import PolicySettings
from .common import progress

STEP_SECONDS = 300


def utcnow() -> datetime:
    """Test seam."""
    return datetime.now(UTC)


def load_live_state(args: argparse.Namespace, settings: PolicySettings, console: Console) -> ClusterState:
    """Inventory from the API server of ``--kubeconfig`` plus usage from ``--prometheus`` over ``--history``."""
    from ..api.policy import DEFAULT_EXCLUDED
    from ..settings import MAX_HISTORY_WINDOW
    from ..units import parse_duration
    from ..api.wiring import api_client_from
    from ..sources.kubernetes import KubernetesSource
    from ..sources.prometheus import PrometheusSource
    from ..sources.promql import Scope
    from ..sources.state import LiveStateReader

    if not getattr(args, "prometheus", None):
        raise ConfigError("a live scan needs --prometheus URL (where the usage history is), e.g. "
                          "--prometheus http://localhost:9090", field="--prometheus")
    history = parse_duration(getattr(args, "history", None) or "14d", source="finops scan", field="--history",
                             maximum=MAX_HISTORY_WINDOW)
    if history < timedelta(seconds=2 * STEP_SECONDS):
        raise ConfigError(f"--history {args.history} is shorter than two {STEP_SECONDS}s steps; use e.g. 1d or 14d",
                          field="--history")
    api_client = api_client_from(args.kubeconfig or None)
    now = utcnow()
    config = load_config()
    reader = LiveStateReader(cluster=config.cluster_name, region=config.aws_region,
                             kube=KubernetesSource(api_client),
                             prometheus=PrometheusSource(args.prometheus),
                             scope=Scope(exclude_namespaces="|".join(re.escape(n) for n in DEFAULT_EXCLUDED)),
                             settings=settings)
    try:
        with progress(console) as bar:
            bar.add_task(f"Reading the cluster and {args.history} of Prometheus history", total=None)
            state = reader(Window(now - history, now, STEP_SECONDS))
    finally:
        api_client.close()
    state.workloads = [w for w in state.workloads if w.ref.namespace not in DEFAULT_EXCLUDED]
    console.print(f"[dim]read {len(state.workloads)} workloads, {len(state.usage)} containers with usage "
                  f"({', '.join(f'{k}: {v} requests' for k, v in reader.calls.items())})[/]")
    return state


def read_live_costs(args: argparse.Namespace, settings: PolicySettings, start: datetime, end: datetime):
    """Allocate a live cluster's ``[start, end)``: inventory from ``--kubeconfig``, hourly usage from
    ``--prometheus`` (batched, sources/promalloc), the region's prices with the ``--policy`` file's
    ``spec.pricing``. No bill is read from the command line: costs are the price book's (said in the notes).
    Returns ``(Allocation, None)``."""
    allocation, _ = read_live_allocation(args, settings, start, end)
    return allocation, None


def read_live_allocation(args: argparse.Namespace, settings: PolicySettings, start: datetime, end: datetime):
    """:func:`read_live_costs` and the hourly usage it allocated: ``(Allocation, UsageHours)``."""
    from ..api.policy import DEFAULT_EXCLUDED
    from ..api.wiring import api_client_from
    from ..costrun import allocate_window
    from ..sources.kubernetes import KubernetesSource
    from ..sources.promalloc import read_usage_hours
    from ..sources.prometheus import PrometheusSource
    from ..sources.promql import Scope
    from .common import load_prices

    config = load_config()
    api_client = api_client_from(args.kubeconfig or None)
    try:
        inventory = KubernetesSource(api_client).read()
    finally:
        api_client.close()
    scope = Scope(exclude_namespaces="|".join(re.escape(n) for n in DEFAULT_EXCLUDED))
    usage = read_usage_hours(PrometheusSource(args.prometheus), scope, start, min(end, utcnow()),
                             inventory=inventory)
    book = load_prices(args.policy, config.aws_region)
    allocation = allocate_window(usage, inventory.nodes, book, None, settings.allocation)
    allocation.notes.append(f"no bill read: node costs are {book.label} prices; the operator reconciles with the "
                            "bill of its policy's dataSources.aws (CUR or Cost Explorer)")
    return allocation, usage


def read_live_objects(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    """The cluster's SavingsOpportunity and Budget objects (all namespaces), read with ``--kubeconfig``."""
    import kubernetes

    from ..api.wiring import api_client_from
    api_client = api_client_from(args.kubeconfig or None)
    try:
        objects = kubernetes.client.CustomObjectsApi(api_client)
        listed = objects.list_cluster_custom_object("finops.dev", "v1alpha1", "savingsopportunities")
        budgets = objects.list_cluster_custom_object("finops.dev", "v1alpha1", "budgets")
    finally:
        api_client.close()
    return listed.get("items") or [], budgets.get("items") or []
