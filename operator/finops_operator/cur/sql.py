"""The CUR 2.0 query: one SQL text for DuckDB and Athena (Trino), and its rows turned into a Bill.

Usage::

    scope = CurScope.for_cluster("prod", start, end, resource_ids=["i-0abc...", "vol-0def..."],
                                 cluster_arn="arn:aws:eks:eu-west-1:123456789012:cluster/prod")
    sql = bill_sql(scope, table='"cur"."cost_and_usage_report"')     # run it on either engine
    bill = rows_to_bill(rows, scope, source="cur:athena")              # rows as dicts, strings or typed

Columns are those of AWS Data Exports "CUR 2.0" (table COST_AND_USAGE_REPORT).
The SQL uses only what both engines share: ``date_trunc``, ``element_at``,
``TIMESTAMP '...'`` literals, ``GROUP BY`` ordinals. ``element_at(map, key)``
returns the value (NULL when absent) in Trino; DuckDB's builtin returns a list,
so the DuckDB engine defines ``element_at`` as a macro for its session
(``curduck.DUCKDB_ELEMENT_AT``) and the text stays the same.

Effective cost (the amortized-cost rule), per ``line_item_line_item_type``:

| type | counted as |
| --- | --- |
| Usage | line_item_unblended_cost (on-demand or spot as billed) |
| SavingsPlanCoveredUsage | savings_plan_savings_plan_effective_cost |
| DiscountedUsage | reservation_effective_cost |
| SavingsPlanNegation | 0: it cancels the on-demand cost the covered line already replaced |
| SavingsPlanRecurringFee, SavingsPlanUpfrontFee, RIFee, Fee, Tax, Credit, Refund | not read: they name a plan, a reservation or the account, no cluster resource |

Only the first three are selected, so nothing is counted twice. Which rows
belong to the cluster: the given resource ids (node instances, their volumes),
or a cluster tag (see :func:`cluster_tags`), or the EKS cluster itself. The
category is decided in Python from (product code, usage type, resource id):
one rule, :func:`category_of`, shared with the CUR writer and Cost Explorer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigError, DataSourceError
from ..models.costs import CURRENCY, Bill, BillLine, CostCategory, PriceSource

# The CUR 2.0 columns this query reads, and the export setting that brings each in.
REQUIRED_COLUMNS: dict[str, str] = {
    "bill_billing_period_start_date": "the export's column selection",
    "line_item_usage_start_date": "the export's column selection",
    "line_item_usage_end_date": "the export's column selection",
    "line_item_resource_id": "table configuration INCLUDE_RESOURCES = TRUE ('Include resource IDs')",
    "line_item_line_item_type": "the export's column selection",
    "line_item_product_code": "the export's column selection",
    "line_item_usage_type": "the export's column selection",
    "line_item_usage_account_id": "the export's column selection",
    "line_item_unblended_cost": "the export's column selection",
    "line_item_currency_code": "the export's column selection",
    "pricing_public_on_demand_cost": "the export's column selection",
    "savings_plan_savings_plan_effective_cost": "the export's column selection",
    "reservation_effective_cost": "the export's column selection",
    "resource_tags": "the export's column selection (resource_tags) and the cluster tags activated as cost "
                     "allocation tags in the Billing console",
}
COUNTED_LINE_TYPES = ("Usage", "SavingsPlanCoveredUsage", "DiscountedUsage")
EFFECTIVE_COST = ("CASE line_item_line_item_type"
                  " WHEN 'SavingsPlanCoveredUsage' THEN savings_plan_savings_plan_effective_cost"
                  " WHEN 'DiscountedUsage' THEN reservation_effective_cost"
                  " WHEN 'SavingsPlanNegation' THEN 0"
                  " ELSE line_item_unblended_cost END")
NODE_USAGE = ("BoxUsage", "SpotUsage", "DedicatedUsage", "HostUsage")
GRANULARITIES = ("hour", "day")
_RESOURCE_ID = re.compile(r"^[A-Za-z0-9:/._+=@-]{1,512}$")
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_ACCOUNT = re.compile(r"^\d{12}$")


def cur_tag_key(key: str) -> str:
    """A tag key as CUR 2.0 names it inside ``resource_tags``.

    AWS-generated tags (``aws:...``) get the ``aws_`` prefix, user tags ``user_``;
    every character that is not a letter or digit becomes ``_``, letters are
    lower-cased: ``kubernetes.io/cluster/prod-eu`` -> ``user_kubernetes_io_cluster_prod_eu``,
    ``aws:eks:cluster-name`` -> ``aws_eks_cluster_name``.
    """
    prefix, rest = ("aws_", key[4:]) if key.startswith("aws:") else ("user_", key)
    return prefix + re.sub(r"[^a-z0-9]", "_", rest.lower())


def cluster_tags(cluster: str) -> tuple[tuple[str, str | None], ...]:
    """(tag key, value or None for any value) pairs that mark a resource as the cluster's.

    ``kubernetes.io/cluster/<name>`` (owned/shared: nodes, volumes, load balancers, subnets' NAT),
    ``aws:eks:cluster-name`` (EKS), ``eks:cluster-name`` (managed node groups),
    ``eks:eks-cluster-name`` (Karpenter), ``elbv2.k8s.aws/cluster`` (AWS Load Balancer Controller).
    """
    return ((f"kubernetes.io/cluster/{cluster}", None), ("aws:eks:cluster-name", cluster),
            ("eks:cluster-name", cluster), ("eks:eks-cluster-name", cluster), ("elbv2.k8s.aws/cluster", cluster))


@dataclass(frozen=True, slots=True)
class CurScope:
    """What to read: a window, a granularity, and which lines are the cluster's."""

    start: datetime                          # inclusive, UTC
    end: datetime                            # exclusive, UTC
    cluster: str = ""
    resource_ids: tuple[str, ...] = ()
    cluster_arn: str = ""
    tags: tuple[tuple[str, str | None], ...] = ()
    account_id: str = ""
    granularity: str = "hour"

    @classmethod
    def for_cluster(cls, cluster: str, start: datetime, end: datetime, *, resource_ids: Iterable[str] = (),
                    cluster_arn: str = "", account_id: str = "", granularity: str = "hour") -> "CurScope":
        return cls(start, end, cluster, tuple(sorted(set(resource_ids))), cluster_arn,
                   cluster_tags(cluster) if cluster else (), account_id, granularity)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigError("the window must be timezone-aware (UTC)", field="cur.window")
        if self.end <= self.start:
            raise ConfigError(f"end {self.end} must be after start {self.start}", field="cur.window")
        if self.granularity not in GRANULARITIES:
            raise ConfigError(f"granularity {self.granularity!r}: use one of {GRANULARITIES}", field="cur.granularity")
        if self.cluster and not _CLUSTER_NAME.match(self.cluster):
            raise ConfigError(f"{self.cluster!r} is not an EKS cluster name", field="cur.cluster")
        if self.account_id and not _ACCOUNT.match(self.account_id):
            raise ConfigError(f"{self.account_id!r} is not a 12-digit AWS account id", field="cur.accountId")
        for rid in (*self.resource_ids, *([self.cluster_arn] if self.cluster_arn else [])):
            if not _RESOURCE_ID.match(rid):
                raise ConfigError(f"{rid!r} is not a resource id or ARN", field="cur.resourceIds")
        if not (self.cluster or self.resource_ids or self.cluster_arn):
            raise ConfigError("say which lines are the cluster's: a cluster name, resource ids or the cluster ARN",
                              field="cur.scope")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _timestamp(moment: datetime) -> str:
    return "TIMESTAMP " + _quote(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))


def _scope_sql(scope: CurScope) -> str:
    terms = []
    if scope.resource_ids:
        terms.append(f"line_item_resource_id IN ({', '.join(_quote(r) for r in scope.resource_ids)})")
    for key, value in scope.tags:
        ref = f"element_at(resource_tags, {_quote(cur_tag_key(key))})"
        terms.append(f"{ref} IS NOT NULL" if value is None else f"{ref} = {_quote(value)}")
    eks = []
    if scope.cluster_arn:
        eks.append(f"line_item_resource_id = {_quote(scope.cluster_arn)}")
    if scope.cluster:
        eks.append(f"line_item_resource_id LIKE {_quote('%:cluster/' + scope.cluster)}")
    if eks:
        terms.append(f"(line_item_product_code = 'AmazonEKS' AND ({' OR '.join(eks)}))")
    return "\n    OR ".join(terms)


def bill_sql(scope: CurScope, table: str) -> str:
    """The one query, for either engine; ``table`` is the only part that differs between them."""
    account = f"\n  AND line_item_usage_account_id = {_quote(scope.account_id)}" if scope.account_id else ""
    types = ", ".join(_quote(t) for t in COUNTED_LINE_TYPES)
    return f"""SELECT
  date_trunc('{scope.granularity}', line_item_usage_start_date) AS bucket,
  min(line_item_usage_start_date) AS usage_start,
  max(line_item_usage_end_date) AS usage_end,
  line_item_resource_id AS resource_id,
  line_item_product_code AS product_code,
  line_item_usage_type AS usage_type,
  line_item_currency_code AS currency,
  sum({EFFECTIVE_COST}) AS cost,
  sum(pricing_public_on_demand_cost) AS list_cost,
  count(*) AS line_items
FROM {table}
WHERE line_item_usage_start_date >= {_timestamp(scope.start)}
  AND line_item_usage_start_date < {_timestamp(scope.end)}
  AND line_item_line_item_type IN ({types}){account}
  AND (
    {_scope_sql(scope)}
  )
GROUP BY 1, 4, 5, 6, 7
ORDER BY 1, 4, 6"""


RESULT_COLUMNS = ("bucket", "usage_start", "usage_end", "resource_id", "product_code", "usage_type", "currency",
                  "cost", "list_cost", "line_items")


# --------------------------------------------------------------------------- rows -> Bill


def category_of(product_code: str, usage_type: str, resource_id: str) -> CostCategory:
    """What a line pays for (the one rule, for CUR rows and Cost Explorer usage types alike)."""
    if product_code == "AmazonEKS" and "AmazonEKS-Hours" in usage_type:
        return CostCategory.CONTROL_PLANE
    if "NatGateway" in usage_type:
        return CostCategory.NAT_GATEWAY
    if product_code == "AWSELB" or "LoadBalancerUsage" in usage_type or "LCUUsage" in usage_type:
        return CostCategory.LOAD_BALANCER
    if resource_id.startswith("vol-") or "EBS:Volume" in usage_type:
        return CostCategory.VOLUME
    if any(kind in usage_type for kind in NODE_USAGE) and (resource_id.startswith("i-") or not resource_id):
        return CostCategory.NODE
    return CostCategory.OTHER


def pricing_of(usage_type: str) -> PriceSource:
    return PriceSource.SPOT if "SpotUsage" in usage_type else PriceSource.EFFECTIVE


def parse_time(value: Any, *, column: str) -> datetime:
    """A CUR timestamp as DuckDB (datetime) or Athena ('2024-05-01 00:00:00.000') returns it, as UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace(" UTC", "").replace("Z", "+00:00"))
        except ValueError:
            raise DataSourceError(f"{value!r} is not a timestamp", source="cur", field=column) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _number(value: Any, column: str) -> float:
    if value is None or value == "":
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataSourceError(f"{value!r} is not a number", source="cur", field=column) from None


def rows_to_bill(rows: Iterable[Mapping[str, Any] | Sequence[Any]], scope: CurScope, *, source: str,
                 where: str = "the CUR") -> Bill:
    """Result rows of :func:`bill_sql` (dicts or tuples in RESULT_COLUMNS order) -> Bill.

    A currency other than USD is refused; an empty answer is stated in ``problems``.
    """
    lines: list[BillLine] = []
    for raw in rows:
        row = raw if isinstance(raw, Mapping) else dict(zip(RESULT_COLUMNS, raw))
        currency = row.get("currency") or ""
        if currency != CURRENCY:
            raise ConfigError(f"{where} bills in {currency or 'no currency'!r}; only {CURRENCY} is supported "
                              "(line_item_currency_code); convert the export or use Cost Explorer in USD",
                              source=where, field="line_item_currency_code")
        resource, product, usage = row.get("resource_id") or "", row.get("product_code") or "", row.get("usage_type") or ""
        lines.append(BillLine(start=parse_time(row["usage_start"], column="usage_start"),
                              end=parse_time(row["usage_end"], column="usage_end"), resource_id=resource,
                              category=category_of(product, usage, resource), service=product, usage_type=usage,
                              cost=_number(row.get("cost"), "cost"), list_cost=_number(row.get("list_cost"), "list_cost"),
                              pricing=pricing_of(usage)))
    bill = Bill(source=source, start=scope.start, end=scope.end, lines=lines)
    if not lines:
        bill.problems.append(f"{where} has no line items for this cluster from {scope.start:%Y-%m-%d %H:%M} to "
                             f"{scope.end:%Y-%m-%d %H:%M} UTC (the export may not have delivered this period yet, "
                             "or the cluster tags are not activated as cost allocation tags)")
    return bill


def missing_columns(columns: Iterable[str], *, where: str) -> None:
    """Raise ConfigError naming every required CUR 2.0 column that is absent, and the setting that adds it."""
    have = {c.lower() for c in columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in have]
    if missing:
        fixes = sorted({REQUIRED_COLUMNS[c] for c in missing})
        raise ConfigError(f"the CUR is missing column(s) {', '.join(missing)}; it must be a Data Exports "
                          f"'CUR 2.0' export with {'; '.join(fixes)}", source=where, field="columns")


__all__ = ["REQUIRED_COLUMNS", "RESULT_COLUMNS", "CurScope", "bill_sql", "rows_to_bill", "category_of",
           "pricing_of", "cur_tag_key", "cluster_tags", "missing_columns", "parse_time"]
