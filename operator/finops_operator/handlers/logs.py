"""The operator's log lines: kopf's JSON format, the object being handled on every line, nothing secret.

* Format: kopf's own (``kopf.configure(log_format=JSON)``, the same as
  ``kopf run --log-format=json``): one JSON object per line with ``message``,
  ``timestamp``, ``severity``, ``logger`` and, when a policy is being handled,
  ``object`` (apiVersion, kind, namespace, name, uid). ``text`` is kopf's plain
  format with a ``[namespace/name]`` prefix.
* The object: kopf's per-object logger (the handlers' ``logger``) carries it;
  module loggers (``logging.getLogger(__name__)`` in sources, actuation, api)
  get it from a context variable the handlers set with :func:`about`, which
  ``asyncio.to_thread`` carries into the run's thread.
* Secrets: every record's message is scrubbed when the record is made
  (a log-record factory, so every handler sees the scrubbed text, including
  DEBUG lines of boto3/botocore that carry signed headers), and tracebacks
  are scrubbed before they are formatted.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

from ..scrub import scrub

MAX_LINE = 16_384
_OBJECT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("finops_object", default=None)
_BASE_FACTORY = logging.getLogRecordFactory()


def object_ref(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The identifying fields of a Kubernetes object, as kopf puts them in its log lines."""
    meta = obj.get("metadata") or {}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
            "uid": meta.get("uid"), "namespace": meta.get("namespace")}


@contextlib.contextmanager
def about(obj: Mapping[str, Any]) -> Iterator[None]:
    """Log lines written inside this block (in this task or threads started with its context) name ``obj``."""
    token = _OBJECT.set(object_ref(obj))
    try:
        yield
    finally:
        _OBJECT.reset(token)


def current_object() -> dict[str, Any] | None:
    return _OBJECT.get()


class ObjectContext(logging.Filter):
    """A handler filter: give records without an object the one being handled, and scrub tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "k8s_ref"):
            ref = _OBJECT.get()
            if ref is not None:
                record.k8s_ref = ref
        record.logger = record.name
        if record.exc_info:
            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip(), one_line=False)
            record.exc_info = None
        return True


def _scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _BASE_FACTORY(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: leave it to logging to report
        return record
    record.msg, record.args = scrub(message, limit=MAX_LINE), ()
    return record


def install_scrubbing() -> None:
    """Scrub every log record's message when it is made (idempotent)."""
    logging.setLogRecordFactory(_scrubbing_factory)


def uninstall_scrubbing() -> None:
    logging.setLogRecordFactory(_BASE_FACTORY)


def configure_logging(level: str = "INFO", log_format: str = "json") -> None:
    """kopf's log handler in the given format and level, with the object context and scrubbing."""
    import kopf
    debug = level == "DEBUG"
    kopf.configure(debug=debug, verbose=debug, log_refkey="object",
                   log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
                   log_prefix=log_format != "json")
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, ObjectContext) for f in handler.filters):
            handler.addFilter(ObjectContext())
    install_scrubbing()
