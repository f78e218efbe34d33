"""Errors a user can act on: each names where the problem is and how to fix it.

Whether a failed run is worth retrying soon is decided by the error's class
(:attr:`FinOpsError.permanent`), set where the error is raised, and carried
unchanged to the policy's status: no later layer reads the message to guess.
"""
from __future__ import annotations

from typing import ClassVar


class FinOpsError(Exception):
    """Base class. ``source`` is a file, resource or URL; ``field`` the path inside it.

    ``permanent``: a retry cannot help (bad configuration, credentials, permissions,
    something missing) until a person changes something; otherwise the failure is
    transient (a server down, a timeout) and retried with backoff.
    """

    permanent: ClassVar[bool] = False

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.message = message
        self.source = source
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.source and self.field:
            where = f"{self.source}: {self.field}: "
        elif self.source:
            where = f"{self.source}: "
        elif self.field:
            where = f"{self.field}: "
        return f"{where}{self.message}"

    def located(self, *, source: str | None = None, field: str | None = None) -> "FinOpsError":
        """Return a copy of this error with a source/field filled in where missing."""
        return type(self)(self.message, source=self.source or source, field=self.field or field)


class QuantityError(FinOpsError):
    """A CPU/memory/size quantity that cannot be parsed or is out of range."""

    permanent = True


class SnapshotError(FinOpsError):
    """A cluster snapshot file that is missing, malformed or inconsistent."""

    permanent = True


class ConfigError(FinOpsError):
    """A policy or CLI setting that is invalid."""

    permanent = True


class EditError(FinOpsError):
    """A manifest or Terraform file that cannot be edited safely."""

    permanent = True


class SourceNotFound(EditError):
    """The workload or resource is not defined anywhere in the GitOps repository."""


class DataSourceError(FinOpsError):
    """Prometheus, AWS or the Kubernetes API failed or returned unusable data (transient: retried)."""


class DataSourceRefused(DataSourceError):
    """A data source refused for a reason a retry cannot fix (401/403/404, a rejected query)."""

    permanent = True


class ProviderError(FinOpsError):
    """Git or GitHub failed an operation (transient: retried)."""


class ProviderRefused(ProviderError):
    """Git or GitHub refused for a reason a retry cannot fix (bad token, no permission, no such repository or
    branch)."""

    permanent = True


class UnreadableFile(FinOpsError):
    """A file refused before parsing: outside the repository, not a regular file, over its size
    limit, not UTF-8 text, or a YAML bomb (see :mod:`finops_operator.safeio`)."""

    permanent = True


class MissingFile(UnreadableFile):
    """The file does not exist (callers that create a file on first use catch this one only)."""


class ProofError(EditError):
    """An edit that rendering does not prove: a renderer failed, or the rendered objects differ from the intent."""


class ToolMissing(ProofError):
    """A renderer (kustomize, helm, tofu) that proving a change needs is not installed."""
