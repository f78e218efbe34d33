"""Stored FinOpsReports: one ConfigMap per generated report, owned by its FinOpsReport.

    store = ReportStore(api_client)
    entry = store.save(spec, key, rendered, now)       # StoredReport; an existing one for the key is reused
    body = store.read(namespace, name, key, "html")    # the document's bytes, None when unknown
    store.delete(spec, entry)                          # pruning (see :func:`prune`)

A report's ConfigMap ``finops-report-<name>-<key>`` holds ``binaryData`` ``report.html.gz``,
``report.json.gz`` and ``report.md.gz``, labels naming the FinOpsReport and the report's date, and the
annotation ``finops.dev/report`` with its :class:`StoredReport` (what the status lists). Over
:data:`MAX_COMPRESSED` (a ConfigMap holds at most 1 MiB) the report is refused with
:class:`ReportTooLarge`, never cut. ``save`` is idempotent per key: a create that meets an existing ConfigMap
(a previous, interrupted run stored it) returns that report, so a restart never stores a slot twice.
"""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..errors import DataSourceError, FinOpsError
from ..permissions import Rule
from ..safeio import gunzip_bounded
from .cmstore import BlobConfigMaps, Owner, blob_body, config_map_name
from .conditions import timestamp
from .report import ReportSpec
from .reportgen import Rendered

PREFIX = "finops-report-"
REPORT_LABEL = "finops.dev/report"
DATE_LABEL = "finops.dev/report-date"
ENTRY_ANNOTATION = "finops.dev/report"
MANAGED = {"app.kubernetes.io/component": "report"}
FORMATS = {"html": ("report.html.gz", "text/html; charset=utf-8"),
           "json": ("report.json.gz", "application/json"),
           "md": ("report.md.gz", "text/markdown; charset=utf-8")}
MAX_COMPRESSED = 900 * 1024
MAX_DOCUMENT = 32 * 1024 * 1024   # uncompressed bytes served at most (a gzip bomb stops here)
MAX_HEADLINE = 4096              # bytes of headline JSON kept in the entry (status and annotation)
KEY_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{4}$")

PERMISSIONS = (   # RBAC for the calls below (see finops_operator.permissions)
    Rule("cluster", "", "configmaps", ("get", "create", "delete"),
         "api/reportstore.py ReportStore: one ConfigMap per stored report in the FinOpsReport's namespace; "
         "delete prunes the ones past spec.retention"),
)


class ReportTooLarge(FinOpsError):
    """The compressed report does not fit in a ConfigMap (refused, not cut)."""


class ReportExists(DataSourceError):
    """The ConfigMap for this report's key exists already (an earlier run stored it)."""


@dataclass(frozen=True, slots=True)
class StoredReport:
    date: str                       # the key: the slot in the report's time zone, YYYY-MM-DD-HHMM
    period: str
    start: str
    end: str
    generatedTime: str
    path: str
    configMap: str
    compressedBytes: int
    headline: dict[str, Any] = field(default_factory=dict)

    def item(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_item(cls, item: Any) -> StoredReport | None:
        try:
            return cls(**{k: item[k] for k in cls.__dataclass_fields__ if k in item})
        except (TypeError, KeyError):
            return None


def report_key(slot: datetime, spec: ReportSpec) -> str:
    """The report's id: its scheduled time in the report's time zone."""
    return slot.astimezone(spec.zone).strftime("%Y-%m-%d-%H%M")


def report_path(namespace: str, name: str, key: str, fmt: str = "html") -> str:
    return f"/reports/{namespace}/{name}/{key}.{fmt}"


def report_config_map(name: str, key: str) -> str:
    return config_map_name(PREFIX, f"{name}-{key.replace('-', '')}")


def _headline(headline: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(headline, sort_keys=True, default=str)
    return json.loads(text) if len(text) <= MAX_HEADLINE else {"note": "headline too large for the status"}


def prune(entries: list[StoredReport], count: int, days: int, now: datetime) -> tuple[list[StoredReport],
                                                                                    list[StoredReport]]:
    """(kept newest first, dropped): at most ``count`` (0: any number), none older than ``days`` (0: any age)."""
    ordered = sorted({e.date: e for e in entries}.values(), key=lambda e: e.end, reverse=True)
    keep = ordered[:count] if count else ordered
    if days:
        cutoff = now - timedelta(days=days)
        keep = [e for e in keep if datetime.fromisoformat(e.end.replace("Z", "+00:00")) >= cutoff]
    return keep, [e for e in ordered if e not in keep]


class ReportStore:
    def __init__(self, api_client: Any) -> None:
        self.maps = BlobConfigMaps(api_client, who="api/reportstore.py")

    def save(self, spec: ReportSpec, key: str, rendered: Rendered, now: datetime) -> StoredReport:
        blobs = {FORMATS[f][0]: gzip.compress(text.encode(), mtime=0)
                 for f, text in (("html", rendered.html), ("json", rendered.json), ("md", rendered.markdown))}
        size = sum(len(b) for b in blobs.values())
        if size > MAX_COMPRESSED:
            raise ReportTooLarge(f"the report for {key} is {size // 1024} KiB compressed, over the "
                                 f"{MAX_COMPRESSED // 1024} KiB a ConfigMap can hold; narrow spec.scope "
                                 "(namespaces, policies) so it covers less", source=spec.source, field="spec.scope")
        name = report_config_map(spec.name, key)
        entry = StoredReport(key, spec.schema.period, timestamp(rendered.start), timestamp(rendered.end),
                             timestamp(now), report_path(spec.namespace, spec.name, key), name, size,
                             _headline(rendered.headline))
        labels = {**MANAGED, REPORT_LABEL: spec.name[:63], DATE_LABEL: key}
        body = blob_body(spec.namespace, name, labels, Owner("FinOpsReport", spec.name, spec.uid), blobs, None,
                         {ENTRY_ANNOTATION: json.dumps(entry.item(), sort_keys=True)})
        try:
            self.maps.write(body, source=spec.source, conflict=ReportExists)
        except ReportExists:
            existing = self.entry(spec.namespace, spec.name, key, source=spec.source)
            if existing is not None:
                return existing
            raise
        return entry

    def entry(self, namespace: str, name: str, key: str, *, source: str) -> StoredReport | None:
        found = self.maps.read(namespace, report_config_map(name, key), source=source)
        if found is None:
            return None
        raw = (found.body["metadata"].get("annotations") or {}).get(ENTRY_ANNOTATION, "")
        try:
            return StoredReport.from_item(json.loads(raw))
        except ValueError:
            return None

    def read(self, namespace: str, name: str, key: str, fmt: str) -> bytes | None:
        """The document (uncompressed), None when there is no such report or format."""
        found = self.maps.read(namespace, report_config_map(name, key),
                               source=f"FinOpsReport {namespace}/{name}")
        if found is None or (found.body["metadata"].get("labels") or {}).get(REPORT_LABEL) != name[:63]:
            return None
        try:
            blob = found.blob(FORMATS[fmt][0])
            return gunzip_bounded(blob, max_blob=MAX_COMPRESSED, max_raw=MAX_DOCUMENT) if blob is not None else None
        except (ValueError, OSError, EOFError):
            return None

    def delete(self, spec: ReportSpec, entry: StoredReport) -> bool:
        """Delete the report's ConfigMap, named from the report and the key (never from the status's text)."""
        if not KEY_PATTERN.match(entry.date):
            return False
        return self.maps.delete(spec.namespace, report_config_map(spec.name, entry.date), source=spec.source)
