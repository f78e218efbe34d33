"""The CUR 2.0 through Amazon Athena: the same SQL as DuckDB, run where the data is.

Usage::

    athena = AthenaCur(AwsSource("eu-west-1"), database="cur", table="cost_and_usage_report",
                       output_location="s3://billing/athena/", workgroup="primary")
    bill = athena.read_bill(scope)                       # scope: cur.sql.CurScope

``start_query_execution`` -> ``get_query_execution`` polled with a growing
interval until SUCCEEDED, FAILED or CANCELLED, or ``timeout_seconds`` (then the
query is stopped) -> ``get_query_results`` page by page (the first row of the
first page is the header, as Athena returns it). A failure becomes a
DataSourceError naming the query id and Athena's reason; a column the table
lacks becomes a ConfigError naming it and the export setting to fix.
"""
from __future__ import annotations

import re
import time
from typing import Any, Callable

from ..errors import ConfigError, DataSourceError, DataSourceRefused
from ..models.costs import Bill
from .aws import AwsSource
from ..cur.sql import REQUIRED_COLUMNS, CurScope, bill_sql, rows_to_bill

_MISSING_COLUMN = re.compile(r"Column '([^']+)' cannot be resolved", re.IGNORECASE)
PAGE = 1000


class AthenaCur:
    """One CUR 2.0 table in Athena."""

    def __init__(self, aws: AwsSource, *, database: str, table: str, output_location: str,
                 workgroup: str = "primary", timeout_seconds: float = 600, poll_seconds: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        for name, value in (("database", database), ("table", table)):
            if not re.fullmatch(r"[A-Za-z0-9_]+", value):
                raise ConfigError(f"{value!r} is not an Athena {name} name", field=f"aws.cur.{name}")
        self.aws, self.database, self.table = aws, database, table
        self.output_location, self.workgroup = output_location, workgroup
        self.timeout_seconds, self.poll_seconds = timeout_seconds, poll_seconds
        self._sleep, self._clock = sleep, clock
        self.last_query_id = ""

    @property
    def table_ref(self) -> str:
        return f'"{self.database}"."{self.table}"'

    @property
    def where(self) -> str:
        return f"athena {self.table_ref} (workgroup {self.workgroup})"

    def read_bill(self, scope: CurScope) -> Bill:
        rows = self.run(bill_sql(scope, self.table_ref))
        return rows_to_bill(rows, scope, source="cur:athena", where=self.where)

    def run(self, sql: str) -> list[dict[str, str | None]]:
        """Run one query to the end and return its rows (column name -> text, None for NULL)."""
        started = self.aws._call("athena", "start_query_execution", QueryString=sql,
                                 QueryExecutionContext={"Database": self.database}, WorkGroup=self.workgroup,
                                 ResultConfiguration={"OutputLocation": self.output_location})
        query_id = self.last_query_id = started["QueryExecutionId"]
        self._wait(query_id)
        return self._results(query_id)

    def _wait(self, query_id: str) -> None:
        deadline, interval = self._clock() + self.timeout_seconds, self.poll_seconds
        while True:
            execution = self.aws._call("athena", "get_query_execution", QueryExecutionId=query_id)["QueryExecution"]
            status = execution.get("Status", {})
            state = status.get("State", "")
            if state == "SUCCEEDED":
                return
            if state in ("FAILED", "CANCELLED"):
                raise self._failure(query_id, state, status)
            if self._clock() >= deadline:
                self.aws._call("athena", "stop_query_execution", QueryExecutionId=query_id)
                raise DataSourceError(f"query {query_id} was still {state or 'pending'} after "
                                      f"{self.timeout_seconds:g} s and was stopped; try again or give the "
                                      "workgroup more capacity", source=self.where, field="GetQueryExecution")
            self._sleep(interval)
            interval = min(interval * 2, 5.0)

    def _failure(self, query_id: str, state: str, status: dict[str, Any]) -> Exception:
        reason = (status.get("AthenaError", {}).get("ErrorMessage") or status.get("StateChangeReason")
                  or "no reason given")[:400]
        column = _MISSING_COLUMN.search(reason)
        if column and column.group(1).lower() in REQUIRED_COLUMNS:
            name = column.group(1).lower()
            return ConfigError(f"query {query_id}: the table has no column {name}; the export needs "
                               f"{REQUIRED_COLUMNS[name]} ({reason})", source=self.where, field="columns")
        error = DataSourceRefused if state == "FAILED" else DataSourceError
        return error(f"query {query_id} {state}: {reason}", source=self.where, field="GetQueryExecution")

    def _results(self, query_id: str) -> list[dict[str, str | None]]:
        rows: list[dict[str, str | None]] = []
        names: list[str] = []
        token: str | None = None
        first = True
        while True:
            params: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": PAGE}
            if token:
                params["NextToken"] = token
            page = self.aws._call("athena", "get_query_results", **params)
            result = page.get("ResultSet", {})
            if not names:
                names = [c["Name"] for c in result.get("ResultSetMetadata", {}).get("ColumnInfo", [])]
            for raw in result.get("Rows", []):
                values = [cell.get("VarCharValue") for cell in raw.get("Data", [])]
                if first and values == names:          # Athena's header row
                    first = False
                    continue
                first = False
                rows.append(dict(zip(names, values)))
            token = page.get("NextToken")
            if not token:
                return rows
