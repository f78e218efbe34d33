"""Operator settings and shared clients (kopf ``on.startup``): the only place settings change.

* persistence in annotations with the ``finops.dev`` prefix: the CRDs' strict
  status schemas would prune kopf's usual ``status.kopf`` progress;
* kopf's own log lines become Events only at WARNING and above (run summaries
  are posted explicitly, see ``api.events``);
* peering is decided by ``finops run`` (``--peering`` / ``--standalone``);
* ``memo`` holds the API client, per-policy locks, the work directory and the
  operator's namespace (policies there may scope any namespace).
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import kopf

from ..api.policy import operator_namespace
from ..api.wiring import api_client_from

PREFIX = "finops.dev"


def plain(value: Any) -> Any:
    """kopf bodies and views as plain dicts/lists (the api package works on plain data)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


class _QuietTicks(logging.Filter):
    """Drop kopf's "Timer 'tick' succeeded." line: the timer fires every few seconds and is usually idle."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timer 'tick' succeeded")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX,
                                                                            key="last-handled-configuration")
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.posting.level = logging.WARNING
    logging.getLogger("kopf.objects").addFilter(_QuietTicks())
    settings.execution.max_workers = int(os.environ.get("FINOPS_MAX_WORKERS", "8"))
    memo.api_client = api_client_from(None)
    memo.locks = {}
    memo.operator_ns = operator_namespace()
    memo.workdir = Path(os.environ.get("FINOPS_WORKDIR") or Path(tempfile.gettempdir()) / "finops-operator")
    memo.retry_base = float(os.environ.get("FINOPS_RETRY_BASE_SECONDS", "60"))
    logger.info("finops-operator started: operator namespace %s, work directory %s", memo.operator_ns, memo.workdir)


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_: Any) -> None:
    client = getattr(memo, "api_client", None)
    if client is not None:
        client.close()
