"""The CUR 2.0 path without AWS: Bill -> CUR Parquet (cur.parquet) -> the one SQL on DuckDB (curduck) -> Bill."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from finops_operator.errors import ConfigError
from finops_operator.models.costs import Bill, BillLine, CostCategory, PriceSource
from finops_operator.sources.curduck import billing_periods, connect, query_cur_files
from finops_operator.cur.parquet import cur_rows, write_cur_parquet, write_rows
from finops_operator.cur.sql import (REQUIRED_COLUMNS, CurScope, bill_sql, category_of, cur_tag_key,
                                            rows_to_bill)

ACCOUNT = "123456789012"
ARN = f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/demo"
T0 = datetime(2024, 5, 31, 20, tzinfo=UTC)      # the window crosses into June: two billing periods
HOURS = 8


def _line(hour: int, rid: str, category: CostCategory, usage: str, cost: float, list_cost: float,
          pricing: PriceSource = PriceSource.EFFECTIVE, service: str = "", tags: dict | None = None) -> BillLine:
    start = T0 + timedelta(hours=hour)
    return BillLine(start, start + timedelta(hours=1), rid, category, service, usage, cost, list_cost, pricing,
                    tags or {})


def demo_bill() -> Bill:
    lines = []
    for h in range(HOURS):
        lines += [
            _line(h, "i-0aaa", CostCategory.NODE, "USE1-BoxUsage:m5.xlarge", 0.192, 0.192, service="AmazonEC2"),
            _line(h, "i-0bbb", CostCategory.NODE, "USE1-BoxUsage:m5.xlarge", 0.134, 0.192, service="AmazonEC2"),  # SP
            _line(h, "i-0ccc", CostCategory.NODE, "USE1-SpotUsage:m5.large", 0.035, 0.096, PriceSource.SPOT,
                  service="AmazonEC2"),
            _line(h, "vol-0ddd", CostCategory.VOLUME, "USE1-EBS:VolumeUsage.gp3", 0.011, 0.011, service="AmazonEC2"),
            _line(h, "", CostCategory.CONTROL_PLANE, "USE1-AmazonEKS-Hours:perCluster", 0.10, 0.10,
                  service="AmazonEKS"),
            _line(h, f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/net/k8s-web/1",
                  CostCategory.LOAD_BALANCER, "USE1-LoadBalancerUsage", 0.0225, 0.0225, service="AWSELB"),
            _line(h, "nat-0eee", CostCategory.NAT_GATEWAY, "USE1-NatGateway-Hours", 0.045, 0.045,
                  service="AmazonEC2"),
        ]
    if HOURS > 4:   # a node that lived half the window
        lines += [_line(h, "i-0fff", CostCategory.NODE, "USE1-BoxUsage:c5.large", 0.085, 0.085) for h in range(4)]
    return Bill("simulated", T0, T0 + timedelta(hours=HOURS), lines)


def scope(**kw) -> CurScope:
    args = dict(resource_ids=["i-0aaa", "i-0bbb", "i-0ccc", "i-0fff", "vol-0ddd"], cluster_arn=ARN)
    args.update(kw)
    return CurScope.for_cluster("demo", T0, T0 + timedelta(hours=HOURS), **args)


def _noise() -> list[dict]:
    """Rows that must not count: another cluster's instance, a tax line, an SP fee with no cluster resource."""
    other = Bill("x", T0, T0, [_line(0, "i-0zzz", CostCategory.NODE, "USE1-BoxUsage:m5.24xlarge", 4.6, 4.6)])
    rows = cur_rows(other, account_id=ACCOUNT, cluster="other")
    tax = dict(rows[0], line_item_line_item_type="Tax", line_item_resource_id="", line_item_unblended_cost=9.0,
               resource_tags={cur_tag_key("kubernetes.io/cluster/demo"): "owned"})
    fee = dict(rows[0], line_item_line_item_type="SavingsPlanRecurringFee", line_item_resource_id="i-0bbb",
               line_item_unblended_cost=5.0)
    return rows + [tax, fee]


def test_round_trip_keeps_totals_per_category_and_resource(tmp_path: Path) -> None:
    bill = demo_bill()
    rows = cur_rows(bill, account_id=ACCOUNT, cluster="demo", cluster_arn=ARN) + _noise()
    write_rows(rows, tmp_path / "data" / "part-0.parquet")
    got = query_cur_files([tmp_path / "data" / "part-0.parquet"], scope(), cache_dir=tmp_path)
    assert got.source == "cur:duckdb" and not got.problems
    for category, total in bill.by_category().items():
        assert got.total(category) == pytest.approx(total), category
    want = bill.by_resource()
    want[ARN] = bill.total(CostCategory.CONTROL_PLANE)            # the control plane is found by its ARN
    assert got.by_resource() == pytest.approx(want)
    assert got.total() == pytest.approx(bill.total())
    spot = [line for line in got.lines if line.resource_id == "i-0ccc"]
    assert spot and all(line.pricing is PriceSource.SPOT for line in spot)
    covered = [line for line in got.lines if line.resource_id == "i-0bbb"]
    assert sum(line.cost for line in covered) == pytest.approx(0.134 * HOURS)      # SP effective, negation not counted
    assert sum(line.list_cost for line in covered) == pytest.approx(0.192 * HOURS)
    assert {line.start.hour for line in covered} == {(T0 + timedelta(hours=h)).hour for h in range(HOURS)}


def test_tags_alone_find_the_cluster_and_daily_buckets(tmp_path: Path) -> None:
    path = write_cur_parquet(demo_bill(), tmp_path / "cur.parquet", account_id=ACCOUNT, cluster="demo",
                             cluster_arn=ARN)
    got = query_cur_files([path], scope(resource_ids=(), cluster_arn="", granularity="day"), cache_dir=tmp_path)
    assert got.total() == pytest.approx(demo_bill().total())
    assert {line.start.date() for line in got.lines} == {T0.date(), (T0 + timedelta(hours=HOURS)).date()}


def test_missing_columns_are_named_with_the_export_setting(tmp_path: Path) -> None:
    full = write_cur_parquet(demo_bill(), tmp_path / "full.parquet", account_id=ACCOUNT, cluster="demo")
    cut = tmp_path / "cut.parquet"
    duckdb.sql(f"COPY (SELECT * EXCLUDE (line_item_resource_id, resource_tags) FROM read_parquet('{full}')) "
               f"TO '{cut}' (FORMAT parquet)")
    with pytest.raises(ConfigError) as err:
        query_cur_files([cut], scope(), cache_dir=tmp_path)
    text = str(err.value)
    assert "line_item_resource_id" in text and "resource_tags" in text and "INCLUDE_RESOURCES" in text


def test_a_currency_other_than_usd_is_refused(tmp_path: Path) -> None:
    bill = demo_bill()
    bill.currency = "EUR"
    path = write_cur_parquet(bill, tmp_path / "eur.parquet", account_id=ACCOUNT, cluster="demo")
    with pytest.raises(ConfigError, match="'EUR'.*only USD"):
        query_cur_files([path], scope(), cache_dir=tmp_path)


def test_an_empty_period_is_stated_not_a_silent_zero(tmp_path: Path) -> None:
    path = write_cur_parquet(demo_bill(), tmp_path / "cur.parquet", account_id=ACCOUNT, cluster="demo")
    later = CurScope.for_cluster("demo", T0 + timedelta(days=3), T0 + timedelta(days=4))
    got = query_cur_files([path], later, cache_dir=tmp_path)
    assert got.lines == [] and got.total() == 0
    assert "no line items for this cluster" in got.problems[0]


def test_duckdb_reads_nothing_outside_the_cache(tmp_path: Path) -> None:
    inside = write_cur_parquet(demo_bill(), tmp_path / "cache" / "cur.parquet", account_id=ACCOUNT, cluster="demo")
    outside = write_cur_parquet(demo_bill(), tmp_path / "elsewhere.parquet", account_id=ACCOUNT, cluster="demo")
    with pytest.raises(ConfigError, match="outside the CUR cache"):
        connect([outside], cache_dir=tmp_path / "cache")
    con = connect([inside], cache_dir=tmp_path / "cache")
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        con.execute(f"SELECT count(*) FROM read_parquet('{outside}')").fetchall()


def test_the_sql_is_portable_text() -> None:
    sql = bill_sql(scope(), '"cur"."report"')
    assert "element_at(resource_tags, 'user_kubernetes_io_cluster_demo') IS NOT NULL" in sql
    assert "element_at(resource_tags, 'aws_eks_cluster_name') = 'demo'" in sql
    assert "resource_tags[" not in sql and "::" not in sql and "INTERVAL" not in sql
    assert "TIMESTAMP '2024-05-31 20:00:00'" in sql
    assert set(REQUIRED_COLUMNS) >= {c for c in REQUIRED_COLUMNS if c in sql}


def test_element_at_means_the_value_in_duckdb_as_in_trino(tmp_path: Path) -> None:
    path = write_cur_parquet(demo_bill(), tmp_path / "cur.parquet", account_id=ACCOUNT, cluster="demo")
    con = connect([path], cache_dir=tmp_path)
    value, absent = con.execute("SELECT element_at(resource_tags, 'user_kubernetes_io_cluster_demo'), "
                                "element_at(resource_tags, 'nope') FROM cur LIMIT 1").fetchone()
    assert (value, absent) == ("owned", None)


@pytest.mark.parametrize("bad", [dict(resource_ids=["i-1' OR '1'='1"]), dict(account_id="12"),
                                 dict(granularity="minute")])
def test_scope_inputs_are_validated(bad: dict) -> None:
    with pytest.raises(ConfigError):
        scope(**bad)


def test_categories_and_tag_keys() -> None:
    assert category_of("AmazonEC2", "USE1-EBS:VolumeUsage.gp3", "vol-1") is CostCategory.VOLUME
    assert category_of("AmazonEC2", "USE1-NatGateway-Bytes", "") is CostCategory.NAT_GATEWAY
    assert category_of("AmazonEC2", "USE1-DataTransfer-Regional-Bytes", "i-1") is CostCategory.OTHER
    assert cur_tag_key("aws:eks:cluster-name") == "aws_eks_cluster_name"
    assert cur_tag_key("kubernetes.io/cluster/Prod-EU") == "user_kubernetes_io_cluster_prod_eu"
    assert billing_periods(datetime(2024, 12, 31, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)) == ["2024-12",
                                                                                                      "2025-01"]


def test_athena_style_string_rows_make_the_same_bill(tmp_path: Path) -> None:
    path = write_cur_parquet(demo_bill(), tmp_path / "cur.parquet", account_id=ACCOUNT, cluster="demo",
                             cluster_arn=ARN)
    typed = query_cur_files([path], scope(), cache_dir=tmp_path)
    as_text = [{"usage_start": f"{line.start:%Y-%m-%d %H:%M:%S}.000", "usage_end": f"{line.end:%Y-%m-%d %H:%M:%S}.000",
                "resource_id": line.resource_id, "product_code": line.service, "usage_type": line.usage_type,
                "currency": "USD", "cost": repr(line.cost), "list_cost": repr(line.list_cost)} for line in typed.lines]
    again = rows_to_bill(as_text, scope(), source="cur:athena")
    assert again.lines == typed.lines


def test_athena_failures_name_the_query_and_reason() -> None:
    from finops_operator.errors import DataSourceError, DataSourceRefused
    from finops_operator.sources.aws import AwsSource
    from finops_operator.sources.curathena import AthenaCur

    athena = AthenaCur(AwsSource("eu-west-1"), database="cur", table="report", output_location="s3://b-1/x/")
    failed = athena._failure("q-1", "FAILED", {"AthenaError": {"ErrorMessage": "SYNTAX_ERROR: line 1:8"}})
    assert isinstance(failed, DataSourceRefused) and "query q-1 FAILED: SYNTAX_ERROR" in str(failed)
    cancelled = athena._failure("q-2", "CANCELLED", {"StateChangeReason": "cancelled by user"})
    assert type(cancelled) is DataSourceError and "q-2" in str(cancelled) and "cancelled by user" in str(cancelled)
    column = athena._failure("q-3", "FAILED", {"AthenaError": {"ErrorMessage": "COLUMN_NOT_FOUND: line 5:3: "
                                                               "Column 'line_item_resource_id' cannot be resolved"}})
    assert isinstance(column, ConfigError) and "INCLUDE_RESOURCES" in str(column) and "q-3" in str(column)
