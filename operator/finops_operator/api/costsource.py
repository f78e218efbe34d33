"""The operator's cost reader: one run's usage hours (Prometheus) and the cluster's bill (``dataSources.aws``).

    deps.read_costs = cost_reader(policy, prometheus, scope, cluster=cluster, workdir=workdir)
    usage, bill = deps.read_costs(window)        # -> reconcile's "costs" stage (costrun.allocate_window)

* usage: :func:`~..sources.promalloc.read_usage_hours` from the scan's own Prometheus source and scope
  (an empty scope is an allocation of idle nodes, not an error);
* the bill, by ``dataSources.aws.costSource``:

  - ``CostExplorer``: GetCostAndUsage, daily, only what carries the cluster's tag :data:`COST_EXPLORER_TAG`
    (a cost allocation tag: activate it in the Billing console), answers cached in the work directory;
  - ``CUR`` with ``cur.engine: DuckDB``: the export's Parquet files kept in ``workdir/cur`` (only new or
    changed objects are downloaded) and queried locally;
  - ``CUR`` with ``cur.engine: Athena``: the same SQL on the export's Athena table;
  - no ``dataSources.aws``: None (the window is priced with the price book).

  The CUR lines that are the cluster's: its tags (``cur.sql.cluster_tags``) and the instance and volume ids
  of the nodes and claims Prometheus saw in the window.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..models import Window
from ..models.costs import Bill, UsageHours
from ..reconcile import CostReader
from ..sources.promql import Scope
from .policy import AwsSpec, PolicySpec

if TYPE_CHECKING:
    from ..sources.aws import AwsSource
    from ..sources.prometheus import PrometheusSource

COST_EXPLORER_CACHE = timedelta(hours=6)     # GetCostAndUsage costs $0.01 a request; daily data moves slowly
BillReader = Callable[[UsageHours, datetime, datetime], Bill]     # (usage, start, end UTC) -> the bill


def cost_explorer_tag(cluster: str) -> tuple[str, str]:
    """The tag Cost Explorer filters the cluster's costs by (the one the cluster's nodes and volumes carry)."""
    return f"kubernetes.io/cluster/{cluster}", "owned"


def cost_reader(policy: PolicySpec, prometheus: "PrometheusSource", scope: Scope, *, cluster: str,
                workdir: Path) -> CostReader:
    """``window -> (usage hours, bill or None)`` for the policy (see the module's docstring)."""
    from ..sources.promalloc import read_usage_hours
    read_bill = bill_reader(policy.aws, cluster=cluster, workdir=workdir) if policy.aws else None

    def read(window: Window) -> tuple[UsageHours, Bill | None]:
        usage = read_usage_hours(prometheus, scope, window.start, window.end, inventory=None, allow_empty=True)
        start = datetime.fromtimestamp(int(usage.hours[0]), UTC)
        end = datetime.fromtimestamp(int(usage.hours[-1]) + 3600, UTC)
        return usage, read_bill(usage, start, end) if read_bill is not None else None

    return read


def resource_ids(usage: UsageHours) -> list[str]:
    """The instance ids of the window's nodes and the EBS volume ids of its claims (the CUR's resource ids)."""
    return [n.instance_id for n in usage.nodes if n.instance_id] + \
        [c.volume_id for c in usage.claims if c.volume_id and c.volume_id.startswith("vol-")]


def bill_reader(aws: AwsSpec, *, cluster: str, workdir: Path, connect: Callable[..., "AwsSource"] | None = None
                ) -> BillReader:
    """``(usage, start, end) -> Bill`` from the policy's cost source; ``connect(region, **kw)`` makes the
    AwsSource (tests point it at moto)."""
    from ..cur.sql import CurScope
    from ..sources.cost_cache import CostCache
    if connect is None:
        from ..sources.aws import AwsSource as connect
    if aws.cost_source != "CUR":
        source = connect(aws.region, cache=CostCache(workdir / "cost-explorer.json", ttl=COST_EXPLORER_CACHE))
        tag = cost_explorer_tag(cluster)
        return lambda usage, start, end: source.cost_explorer_bill(start.date(), _end_date(end), tag=tag)
    cur, source = aws.cur, connect(aws.region)
    assert cur is not None                        # the spec's rule: costSource CUR requires aws.cur

    def scope(usage: UsageHours, start: datetime, end: datetime) -> CurScope:
        return CurScope.for_cluster(cluster, start, end, resource_ids=resource_ids(usage))

    if cur.engine == "Athena":
        from ..sources.curathena import AthenaCur
        athena = AthenaCur(source, database=cur.database or "", table=cur.table or "",
                           output_location=cur.output_location or "", workgroup=cur.workgroup)
        return lambda usage, start, end: athena.read_bill(scope(usage, start, end))
    from ..sources.curduck import CurCache, read_bill_duckdb
    cache = CurCache(source, bucket=cur.bucket or "", export_name=cur.export_name or "", prefix=cur.prefix,
                     cache_dir=workdir / "cur", max_bytes=cur.max_download_gib * 2**30)
    return lambda usage, start, end: read_bill_duckdb(cache, scope(usage, start, end))


def _end_date(end: datetime):
    """Cost Explorer's exclusive end date covering ``end`` (a day started is a day asked for)."""
    day = end.date()
    return day if end == datetime(day.year, day.month, day.day, tzinfo=UTC) else day + timedelta(days=1)
