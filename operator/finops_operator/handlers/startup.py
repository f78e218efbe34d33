"""Operator settings and shared clients (kopf ``on.startup``): the only place settings change.

* the operator's configuration (:class:`~finops_operator.config.OperatorConfig`) is
  read once, when the handlers are loaded (the timer's interval is a decorator
  argument), and put into ``memo.config``; nothing else reads the environment;
* persistence in annotations with the ``finops.dev`` prefix: the CRDs' strict
  status schemas would prune kopf's usual ``status.kopf`` progress;
* kopf's own log lines become Events only at WARNING and above (run summaries
  are posted explicitly, see ``api.events``);
* peering is decided by ``finops run`` (``--peering`` / ``--standalone``);
* ``memo`` holds the configuration, the API client, per-policy locks, the
  per-policy run Leases (``api.coordination``), the work directory and the
  operator's namespace (policies there may scope any namespace).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from ..api.coordination import RunCoordinator
from ..api.wiring import api_client_from
from ..config import OperatorConfig, load_config

PREFIX = "finops.dev"
CONFIG: OperatorConfig = load_config()


def plain(value: Any) -> Any:
    """kopf bodies and views as plain dicts/lists (the api package works on plain data)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


class _QuietTicks(logging.Filter):
    """Drop kopf's "Timer 'tick' succeeded." lines (and the health and report timers'): they fire often and are
    usually idle."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Timer 'tick' succeeded", "Timer 'daily_health' succeeded",
                                               "Timer 'generate_report' succeeded"))


def fill_memo(memo: kopf.Memo, config: OperatorConfig, api_client: Any) -> None:
    """What every handler finds in ``memo`` (tests build the same with a fake client)."""
    memo.config = config
    memo.api_client = api_client
    memo.locks = {}
    memo.health_inputs = {}        # (namespace, policy) -> HealthData of its latest run (handlers/health.py)
    memo.operator_ns = config.operator_namespace
    memo.workdir = config.workdir
    memo.retry_base = config.retry_base_seconds
    memo.coordinator = RunCoordinator(api_client, namespace=config.operator_namespace, identity=config.identity,
                                      seconds=config.lease_seconds)


class _TolerantProgress(kopf.AnnotationsProgressStorage):
    """kopf's handler progress in our annotations; garbage written there by hand counts as no progress.

    Anyone who may edit a policy may edit its annotations: kopf's own ``json.loads`` of a value such
    as ``{`` or ``[1, 2]`` failed on every event, so the object was never handled again.
    """

    def fetch(self, *, key: Any, body: Any) -> Any:
        try:
            found = super().fetch(key=key, body=body)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None


class _TolerantDiffBase(kopf.AnnotationsDiffBaseStorage):
    """The last handled spec; an unreadable one counts as absent (the object is handled as new)."""

    def fetch(self, *, body: Any) -> Any:
        try:
            found = super().fetch(body=body)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    settings.persistence.progress_storage = _TolerantProgress(prefix=PREFIX)
    settings.persistence.diffbase_storage = _TolerantDiffBase(prefix=PREFIX, key="last-handled-configuration")
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.posting.level = logging.WARNING
    logging.getLogger("kopf.objects").addFilter(_QuietTicks())
    settings.execution.max_workers = CONFIG.max_workers
    fill_memo(memo, CONFIG, api_client_from(None))
    if CONFIG.cluster_name == "kubernetes":
        logger.warning("FINOPS_CLUSTER_NAME is not set: this cluster is called 'kubernetes' in pull requests and "
                       "the ledger (the chart sets it from clusterName)")
    memo.report_server = start_report_server(memo.api_client, CONFIG, logger)
    logger.info("finops-operator started: cluster %s, operator namespace %s, work directory %s, identity %s",
                CONFIG.cluster_name, CONFIG.operator_namespace, CONFIG.workdir, CONFIG.identity)


def start_report_server(api_client: Any, config: OperatorConfig, logger: logging.Logger) -> Any:
    """The report server (api/reportserve.py) beside kopf; a port in use is logged, not fatal."""
    if not config.reports_port:
        return None
    from ..api.reportserve import ReportServer
    try:
        server = ReportServer(api_client, config.reports_port, config.reports_address).start()
    except OSError as exc:
        logger.error("the report server cannot listen on %s:%d (%s): FinOpsReports are generated and stored but "
                     "not served; set FINOPS_REPORTS_PORT to a free port", config.reports_address,
                     config.reports_port, exc)
        return None
    logger.info("report server on %s:%d (/reports/<namespace>/<name>/)", config.reports_address, server.port)
    return server


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_: Any) -> None:
    server = getattr(memo, "report_server", None)
    if server is not None:
        server.stop()
    client = getattr(memo, "api_client", None)
    if client is not None:
        client.close()
