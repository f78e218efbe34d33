"""The operator's own configuration, read once at start-up from ``FINOPS_*`` environment variables.

One :class:`OperatorConfig` is created in ``@kopf.on.startup`` (``handlers.startup``)
and kept in ``memo.config``; nothing else in the package reads the environment for
its settings. The Helm chart sets these variables (``templates/deployment.yaml``):

==================================  ==========================================================
``FINOPS_CLUSTER_NAME``             this cluster's name in PRs, the ledger and reports (chart: ``clusterName``)
``FINOPS_OPERATOR_NAMESPACE``       where the operator runs; policies there may scope any namespace
``FINOPS_POD_NAME``                 the pod (Events' reportingInstance, the policy Lease holder)
``FINOPS_LOG_LEVEL``                DEBUG, INFO, WARNING, ERROR
``FINOPS_LOG_FORMAT``               ``json`` (one JSON object per line) or ``text``
``FINOPS_TIMER_INTERVAL_SECONDS``   how often each policy checks whether it is due
``FINOPS_REPORTS_PORT``             the report server's port (``/reports/...``); 0: no report server
``FINOPS_REPORTS_ADDRESS``          the address it listens on (0.0.0.0; 127.0.0.1 for port-forward only)
``FINOPS_REPORT_INTERVAL_SECONDS``  how often each FinOpsReport checks whether it is due
``FINOPS_RETRY_BASE_SECONDS``       first retry delay after a transient failure (then doubled)
``FINOPS_LEASE_SECONDS``            how long a policy's run Lease lasts without renewal
``FINOPS_MAX_WORKERS``              kopf's thread pool for synchronous handlers
``FINOPS_WORKDIR``                  Git clones and checkouts
``FINOPS_ALLOW_LOCAL_GIT``          accept file:// git remotes in policies (tests and single-node demos)
``AWS_REGION``                      default region for pricing when a policy names none
==================================  ==========================================================

A bad value stops the start-up with a ConfigError that names the variable.
"""
from __future__ import annotations

import os
import socket
import tempfile
from enum import Enum
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

DEFAULT_OPERATOR_NAMESPACE = "finops-system"
DEFAULT_CLUSTER_NAME = "kubernetes"


class LogFormat(str, Enum):
    JSON = "json"
    TEXT = "text"


class LogLevel(str, Enum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class OperatorConfig(BaseSettings):
    """Everything the running operator is configured with (not the policies: those are custom resources)."""

    model_config = SettingsConfigDict(env_prefix="FINOPS_", frozen=True, extra="ignore", case_sensitive=False)

    cluster_name: str = Field(default=DEFAULT_CLUSTER_NAME, min_length=1, max_length=63,
                              pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
                              description="This cluster's name in pull requests, the savings ledger and reports")
    operator_namespace: str = Field(default=DEFAULT_OPERATOR_NAMESPACE, min_length=1, max_length=63,
                                    description="Where the operator runs; policies there may scope any namespace")
    pod_name: str = Field(default="", max_length=253,
                          description="The operator pod; empty outside a pod (host and process id are used)")
    log_level: LogLevel = LogLevel.INFO
    log_format: LogFormat = LogFormat.JSON
    timer_interval_seconds: float = Field(default=30.0, ge=0.5, le=3600,
                                          description="How often each policy checks whether it is due")
    budget_interval_seconds: float = Field(default=900.0, ge=0.5, le=86400,
                                           description="How often each Budget is evaluated (spend, forecast, thresholds)")
    notify_interval_seconds: float = Field(default=30.0, ge=0.5, le=3600, description=(
        "How often each NotificationChannel flushes what is due (batches, the end of quiet hours, retries)"))
    reports_port: int = Field(default=8090, ge=0, le=65535, description=(
        "The report server's port (GET /reports/<namespace>/<name>/<date>.html); 0: no report server"))
    reports_address: str = Field(default="0.0.0.0", min_length=1, max_length=253,
                                 description="The address the report server listens on")
    report_interval_seconds: float = Field(default=30.0, ge=0.5, le=3600,
                                           description="How often each FinOpsReport checks whether it is due")
    retry_base_seconds: float = Field(default=60.0, ge=1, le=86400,
                                      description="First retry delay after a transient failure (doubled each time)")
    lease_seconds: int = Field(default=60, ge=5, le=3600,
                               description="A policy's run Lease expires this long after its last renewal")
    max_workers: int = Field(default=8, ge=1, le=64, description="kopf's thread pool for synchronous handlers")
    workdir: Path = Field(default_factory=lambda: Path(tempfile.gettempdir()) / "finops-operator",
                          description="Git clones and checkouts")
    allow_local_git: bool = Field(default=False, description="Accept file:// git remotes in policies (tests and "
                                  "single-node demos only; never set in a shared cluster)")
    aws_region: str = Field(default="us-east-1", validation_alias=AliasChoices("FINOPS_AWS_REGION", "AWS_REGION"),
                            description="Default region for pricing when a policy names none")

    @property
    def identity(self) -> str:
        """Who holds a policy's Lease: the pod name, else host/pid (a restarted process is a new holder)."""
        return self.pod_name or f"{socket.gethostname()}/{os.getpid()}"

    @property
    def instance(self) -> str:
        """Events' reportingInstance."""
        return self.pod_name or "finops-operator"


def load_config() -> OperatorConfig:
    """Read the environment once; a bad value is a ConfigError naming the variable."""
    try:
        return OperatorConfig()
    except ValidationError as exc:
        problems = "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid operator configuration: {problems}", source="environment") from None


def _variable(loc: tuple) -> str:
    name = "_".join(str(p) for p in loc).upper()
    return name if name.startswith(("FINOPS_", "AWS_")) else f"FINOPS_{name}"
