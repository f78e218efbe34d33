"""The CUR 2.0 through DuckDB: download the export's Parquet files incrementally, query them locally.

Usage::

    aws = AwsSource("eu-west-1")
    cache = CurCache(aws, bucket="billing", prefix="cur", export_name="cur2", cache_dir=Path("/var/cache/cur"))
    bill = read_bill_duckdb(cache, scope)                  # scope: cur.sql.CurScope
    bill = query_cur_files(files, scope, cache_dir=...)    # already-local files (tests, benchmarks)

Layout (AWS Data Exports, "overwrite" delivery):
``s3://<bucket>/<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/*.parquet``. Only
the billing periods the window touches are listed; an object is downloaded
when it is new or its ETag changed, and local files AWS no longer lists are
removed. Before downloading, the total size of those periods is checked
against ``max_bytes`` (a clear error says to use the Athena engine). Local
paths are checked to stay inside the cache directory, and DuckDB itself is
confined to it (``allowed_directories`` + ``enable_external_access = false``):
the query reads nothing else. No DuckDB extension is needed (Parquet is
built in), so nothing is downloaded at run time.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import duckdb

from ..errors import ConfigError, DataSourceError
from ..models.costs import Bill
from .aws import AwsSource
from ..cur.sql import CurScope, bill_sql, missing_columns, rows_to_bill

log = logging.getLogger(__name__)

MANIFEST = ".cur-objects.json"
VIEW = "cur"
_SAFE_PART = re.compile(r"^[A-Za-z0-9!_.*'()=-]+$")
CHUNK = 8 * 2**20


def billing_periods(start: datetime, end: datetime) -> list[str]:
    """``YYYY-MM`` of every month that [start, end) touches."""
    last = end - timedelta(microseconds=1)
    year, month, out = start.year, start.month, []
    while (year, month) <= (last.year, last.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


@dataclass(frozen=True, slots=True)
class CurObject:
    key: str
    etag: str
    size: int


@dataclass(slots=True)
class SyncStats:
    downloaded: int = 0
    kept: int = 0
    removed: int = 0
    bytes_downloaded: int = 0


class CurCache:
    """A local copy of one CUR 2.0 export's Parquet files, kept in step with S3."""

    def __init__(self, aws: AwsSource, *, bucket: str, export_name: str, cache_dir: Path, prefix: str = "",
                 max_bytes: int = 20 * 2**30):
        self.aws, self.bucket, self.export_name = aws, bucket, export_name
        self.base = "/".join(p for p in (prefix.strip("/"), export_name) if p)
        self.cache_dir = Path(cache_dir).resolve()
        self.max_bytes = max_bytes
        self.stats = SyncStats()
        self.where = f"s3://{bucket}/{self.base}/data/"

    def _list(self, period: str) -> list[CurObject]:
        prefix = f"{self.base}/data/BILLING_PERIOD={period}/"
        items = self.aws._pages("s3", "list_objects_v2", {"Bucket": self.bucket, "Prefix": prefix}, "Contents",
                                "ContinuationToken", "NextContinuationToken")
        return [CurObject(i["Key"], i.get("ETag", "").strip('"'), int(i.get("Size", 0)))
                for i in items if i["Key"].endswith(".parquet")]

    def local_path(self, key: str) -> Path:
        """Where an object lives locally; refuses any key that would land outside the cache directory."""
        relative = PurePosixPath(key[len(self.base) + 1:] if key.startswith(self.base + "/") else key)
        if relative.is_absolute() or not relative.parts or not all(_SAFE_PART.match(p) and p not in (".", "..")
                                                                    for p in relative.parts):
            raise DataSourceError(f"refusing object key {key!r}: it does not map to a file inside the cache",
                                  source=self.where, field="key")
        path = (self.cache_dir / self.export_name / Path(*relative.parts)).resolve()
        if not path.is_relative_to(self.cache_dir):
            raise DataSourceError(f"refusing object key {key!r}: it leaves the cache directory", source=self.where,
                                  field="key")
        return path

    def _manifest(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads((self.cache_dir / MANIFEST).read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save_manifest(self, manifest: dict[str, dict[str, Any]]) -> None:
        tmp = self.cache_dir / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, sort_keys=True))
        os.replace(tmp, self.cache_dir / MANIFEST)

    def sync(self, start: datetime, end: datetime) -> list[Path]:
        """Bring the periods [start, end) touches up to date locally; return their local files."""
        periods = billing_periods(start, end)
        objects = [obj for period in periods for obj in self._list(period)]
        if not objects:
            raise DataSourceError(f"no CUR 2.0 Parquet files under {self.where}BILLING_PERIOD={{{','.join(periods)}}}/; "
                                  "check bucket, prefix and exportName, and that the export has delivered",
                                  source=self.where, field="BILLING_PERIOD")
        total = sum(o.size for o in objects)
        if total > self.max_bytes:
            raise ConfigError(f"the CUR for {', '.join(periods)} is {total / 2**30:.1f} GiB, above the "
                              f"{self.max_bytes / 2**30:.1f} GiB download limit; use aws.cur.engine Athena for an "
                              "account this size, or raise aws.cur.maxDownloadGiB", source=self.where,
                              field="maxDownloadGiB")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        manifest = self._manifest()
        paths = [self._fetch(obj, manifest) for obj in objects]
        self._remove_stale(periods, {o.key for o in objects}, manifest)
        self._save_manifest(manifest)
        return paths

    def _fetch(self, obj: CurObject, manifest: dict[str, dict[str, Any]]) -> Path:
        path = self.local_path(obj.key)
        known = manifest.get(obj.key, {})
        if known.get("etag") == obj.etag and path.is_file() and path.stat().st_size == obj.size:
            self.stats.kept += 1
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        answer = self.aws._call("s3", "get_object", Bucket=self.bucket, Key=obj.key, IfMatch=f'"{obj.etag}"')
        written = 0
        with open(tmp, "wb") as out:
            for chunk in answer["Body"].iter_chunks(CHUNK):
                out.write(chunk)
                written += len(chunk)
        if written != obj.size:
            tmp.unlink(missing_ok=True)
            raise DataSourceError(f"{obj.key}: got {written} bytes, S3 listed {obj.size}; it changed while being "
                                  "read, try again", source=self.where, field="get_object")
        os.replace(tmp, path)
        manifest[obj.key] = {"etag": obj.etag, "size": obj.size}
        self.stats.downloaded += 1
        self.stats.bytes_downloaded += written
        return path

    def _remove_stale(self, periods: list[str], listed: set[str], manifest: dict[str, dict[str, Any]]) -> None:
        wanted = tuple(f"{self.base}/data/BILLING_PERIOD={p}/" for p in periods)
        for key in [k for k in manifest if k.startswith(wanted) and k not in listed]:
            self.local_path(key).unlink(missing_ok=True)
            del manifest[key]
            self.stats.removed += 1


def _element_at_macro(con: duckdb.DuckDBPyConnection) -> str:
    """Make ``element_at(map, key)`` return the value (NULL when absent), as Trino's does."""
    kind = con.execute("SELECT typeof(map(['k'], ['v'])['k'])").fetchone()[0]
    body = "m[k][1]" if kind.endswith("[]") else "m[k]"      # map subscript gave a list before DuckDB 1.1
    return f"CREATE OR REPLACE TEMP MACRO element_at(m, k) AS {body}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(files: list[Path], *, cache_dir: Path, memory_limit: str | None = None,
            threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB session confined to ``cache_dir`` with the view ``cur`` over ``files``."""
    root = Path(cache_dir).resolve()
    outside = [f for f in files if not Path(f).resolve().is_relative_to(root)]
    if outside:
        raise ConfigError(f"{outside[0]} is outside the CUR cache directory {root}", source="cur:duckdb",
                          field="files")
    spill = root / ".duckdb-tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    settings = {"temp_directory": str(spill), "memory_limit": memory_limit, "threads": threads}
    for name, value in settings.items():
        if value is not None:
            con.execute(f"SET {name} = {_quote(str(value))}")
    con.execute(f"SET allowed_directories = [{_quote(str(root) + os.sep)}]")
    con.execute("SET enable_external_access = false")
    con.execute(_element_at_macro(con))
    listed = ", ".join(_quote(str(Path(f).resolve())) for f in files)
    con.execute(f"CREATE VIEW {VIEW} AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")
    return con


def query_cur_files(files: list[Path], scope: CurScope, *, cache_dir: Path, source: str = "cur:duckdb",
                    memory_limit: str | None = None, threads: int | None = None) -> Bill:
    """Run :func:`cur.sql.bill_sql` over local CUR 2.0 Parquet files."""
    where = f"CUR files in {cache_dir}"
    if not files:
        raise DataSourceError("no CUR files to read", source=where, field="files")
    con = connect(files, cache_dir=cache_dir, memory_limit=memory_limit, threads=threads)
    try:
        missing_columns([row[0] for row in con.execute(f"DESCRIBE {VIEW}").fetchall()], where=where)
        cursor = con.execute(bill_sql(scope, VIEW))
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    except duckdb.Error as exc:
        raise DataSourceError(f"DuckDB could not read the CUR: {str(exc)[:300]}", source=where, field="query") from None
    finally:
        con.close()
    return rows_to_bill(rows, scope, source=source, where=where)


def read_bill_duckdb(cache: CurCache, scope: CurScope, *, memory_limit: str | None = None) -> Bill:
    """Sync the periods the scope's window touches, then query them."""
    files = cache.sync(scope.start, scope.end)
    return query_cur_files(files, scope, cache_dir=cache.cache_dir, memory_limit=memory_limit)
