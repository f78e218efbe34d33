"""Errors a user can act on: each names where the problem is and how to fix it."""
from __future__ import annotations


class FinOpsError(Exception):
    """Base class. ``source`` is a file, resource or URL; ``field`` the path inside it."""

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


class SnapshotError(FinOpsError):
    """A cluster snapshot file that is missing, malformed or inconsistent."""


class ConfigError(FinOpsError):
    """A policy or CLI setting that is invalid."""


class EditError(FinOpsError):
    """A manifest or Terraform file that cannot be edited safely."""


class SourceNotFound(EditError):
    """The workload or resource is not defined anywhere in the GitOps repository."""


class DataSourceError(FinOpsError):
    """Prometheus, AWS or the Kubernetes API failed or returned unusable data."""


class ProviderError(FinOpsError):
    """Git or GitHub refused an operation."""


class ProofError(EditError):
    """An edit that rendering does not prove: a renderer failed, or the rendered objects differ from the intent."""


class ToolMissing(ProofError):
    """A renderer (kustomize, helm, tofu) that proving a change needs is not installed."""
