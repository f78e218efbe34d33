"""Write a Bill as a CUR 2.0 Parquet file: the one place BillLine <-> CUR row mapping lives.

Usage::

    write_cur_parquet(bill, Path("cur/data/BILLING_PERIOD=2024-05/part-0.parquet"),
                      account_id="123456789012", cluster="demo",
                      cluster_arn="arn:aws:eks:us-east-1:123456789012:cluster/demo")

Each line becomes what AWS would bill for it (columns named as Data Exports'
CUR 2.0 names them, the ones :data:`cur.sql.REQUIRED_COLUMNS` lists):

| BillLine | CUR rows |
| --- | --- |
| pricing SPOT | one ``Usage`` row, usage type ``...SpotUsage...``, unblended = cost |
| ``line_item_type`` DiscountedUsage | ``DiscountedUsage`` (unblended 0, reservation_effective_cost = cost) |
| ``line_item_type`` SavingsPlanCoveredUsage, or pricing EFFECTIVE, a node, cost < list_cost | ``SavingsPlanCoveredUsage`` (unblended = list cost, effective = cost) and its ``SavingsPlanNegation`` (unblended = -list cost) |
| anything else | one ``Usage`` row, unblended = cost |

``pricing_public_on_demand_cost`` is the line's ``list_cost``. The cluster tag
``kubernetes.io/cluster/<cluster>`` = ``owned`` is added to every line but the
control plane's (which is found by its ARN), plus the line's own tags, keyed as
CUR 2.0 keys them (:func:`cur.sql.cur_tag_key`). A line without a usage type
gets the usual one of its category. Reading the file back through
:func:`cur.sql.bill_sql` gives the same totals per category and per resource.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ..errors import ConfigError
from ..models.costs import Bill, BillLine, CostCategory, PriceSource
from .sql import category_of, cur_tag_key

SCHEMA: dict[str, str] = {
    "bill_billing_period_start_date": "TIMESTAMP",
    "line_item_usage_start_date": "TIMESTAMP",
    "line_item_usage_end_date": "TIMESTAMP",
    "line_item_resource_id": "VARCHAR",
    "line_item_line_item_type": "VARCHAR",
    "line_item_product_code": "VARCHAR",
    "line_item_usage_type": "VARCHAR",
    "line_item_usage_account_id": "VARCHAR",
    "line_item_unblended_cost": "DOUBLE",
    "line_item_currency_code": "VARCHAR",
    "pricing_public_on_demand_cost": "DOUBLE",
    "savings_plan_savings_plan_effective_cost": "DOUBLE",
    "reservation_effective_cost": "DOUBLE",
    "resource_tags": "MAP(VARCHAR, VARCHAR)",
}
PRODUCT = {CostCategory.NODE: "AmazonEC2", CostCategory.VOLUME: "AmazonEC2", CostCategory.NAT_GATEWAY: "AmazonEC2",
           CostCategory.CONTROL_PLANE: "AmazonEKS", CostCategory.LOAD_BALANCER: "AWSELB",
           CostCategory.OTHER: "AmazonEC2"}
USAGE = {CostCategory.NODE: "BoxUsage", CostCategory.VOLUME: "EBS:VolumeUsage.gp3",
         CostCategory.NAT_GATEWAY: "NatGateway-Hours", CostCategory.CONTROL_PLANE: "AmazonEKS-Hours:perCluster",
         CostCategory.LOAD_BALANCER: "LoadBalancerUsage", CostCategory.OTHER: "DataTransfer-Regional-Bytes"}


def _naive(moment: datetime) -> datetime:
    """CUR timestamps are UTC without a zone."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _usage_type(line: BillLine) -> str:
    if line.usage_type:
        return line.usage_type
    if line.category is CostCategory.NODE and line.pricing is PriceSource.SPOT:
        return "SpotUsage"
    return USAGE[line.category]


def _rows(line: BillLine, *, account_id: str, currency: str, cluster: str, cluster_arn: str) -> list[dict[str, Any]]:
    resource = line.resource_id or (cluster_arn if line.category is CostCategory.CONTROL_PLANE else "")
    product, usage = line.service or PRODUCT[line.category], _usage_type(line)
    if category_of(product, usage, resource) is not line.category:
        raise ConfigError(f"bill line {resource or '(no resource)'} ({product} {usage}) would read back as "
                          f"{category_of(product, usage, resource).value}, not {line.category.value}; give it the "
                          "usage type AWS bills for that category", source="write_cur_parquet", field="usage_type")
    tags = {cur_tag_key(k): v for k, v in line.tags.items()}
    if cluster and line.category is not CostCategory.CONTROL_PLANE:
        tags.setdefault(cur_tag_key(f"kubernetes.io/cluster/{cluster}"), "owned")
    start = _naive(line.start)
    base = {"bill_billing_period_start_date": start.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
            "line_item_usage_start_date": start, "line_item_usage_end_date": _naive(line.end),
            "line_item_resource_id": resource, "line_item_product_code": product, "line_item_usage_type": usage,
            "line_item_usage_account_id": account_id, "line_item_currency_code": currency,
            "pricing_public_on_demand_cost": line.list_cost, "savings_plan_savings_plan_effective_cost": 0.0,
            "reservation_effective_cost": 0.0, "resource_tags": tags}
    if line.line_item_type == "DiscountedUsage":      # a Reserved Instance: effective cost in its own column
        return [dict(base, line_item_line_item_type="DiscountedUsage", line_item_unblended_cost=0.0,
                     reservation_effective_cost=line.cost)]
    covered = line.line_item_type == "SavingsPlanCoveredUsage" or (
        line.category is CostCategory.NODE and line.pricing is PriceSource.EFFECTIVE
        and line.cost < line.list_cost * (1 - 1e-9))
    if not covered:
        return [dict(base, line_item_line_item_type="Usage", line_item_unblended_cost=line.cost)]
    return [dict(base, line_item_line_item_type="SavingsPlanCoveredUsage", line_item_unblended_cost=line.list_cost,
                 savings_plan_savings_plan_effective_cost=line.cost),
            dict(base, line_item_line_item_type="SavingsPlanNegation", line_item_unblended_cost=-line.list_cost,
                 pricing_public_on_demand_cost=0.0)]


def cur_rows(bill: Bill, *, account_id: str, cluster: str = "", cluster_arn: str = "") -> list[dict[str, Any]]:
    """The CUR 2.0 rows (column -> value) that bill ``bill``."""
    if not account_id.isdigit() or len(account_id) != 12:
        raise ConfigError(f"{account_id!r} is not a 12-digit AWS account id", source="write_cur_parquet",
                          field="account_id")
    return [row for line in bill.lines for row in _rows(line, account_id=account_id, currency=bill.currency,
                                                        cluster=cluster, cluster_arn=cluster_arn)]


def write_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write CUR rows as one Parquet file (DuckDB's own writer, no pyarrow)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TABLE cur ({', '.join(f'{name} {kind}' for name, kind in SCHEMA.items())})")
        if rows:
            columns = [c for c in SCHEMA if c != "resource_tags"]
            inner = ", ".join(f"unnest(${i + 1}::{SCHEMA[c]}[]) AS {c}" for i, c in enumerate(columns))
            n = len(columns)
            inner += f", unnest(${n + 1}::VARCHAR[][]) AS tag_keys, unnest(${n + 2}::VARCHAR[][]) AS tag_values"
            params = [[row[c] for row in rows] for c in columns]
            params += [[list(row["resource_tags"]) for row in rows], [list(row["resource_tags"].values()) for row in rows]]
            con.execute(f"INSERT INTO cur SELECT {', '.join(columns)}, map(tag_keys, tag_values) FROM (SELECT {inner})",
                        params)
        target = str(path).replace("'", "''")
        con.execute(f"COPY cur TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
    finally:
        con.close()
    return path


def write_cur_parquet(bill: Bill, path: Path, *, account_id: str, cluster: str = "", cluster_arn: str = "") -> Path:
    """Write ``bill`` as a CUR 2.0 Parquet file at ``path`` (see the module doc for the mapping)."""
    return write_rows(cur_rows(bill, account_id=account_id, cluster=cluster, cluster_arn=cluster_arn), path)
