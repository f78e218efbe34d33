"""Typed, total readers for JSON that a user can write (custom resource spec, status, annotations).

Each method returns the value with its Python type, or None when absent, or raises
the given :class:`~finops_operator.errors.FinOpsError` subclass naming the source and
the field; never another exception.

    read = JsonReader("SavingsOpportunity ns/x", MappingError)
    pull = read.obj(status.get("pullRequest"), "status.pullRequest")
    number = read.integer(pull.get("number"), "status.pullRequest.number")
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import FinOpsError

MAX_NUMBER = 1e15          # the CRDs' money pattern allows 15 integer digits


@dataclass(frozen=True)
class JsonReader:
    source: str
    error: type[FinOpsError]

    def fail(self, message: str, where: str) -> FinOpsError:
        return self.error(message, source=self.source, field=where)

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"expected an object, got {type(value).__name__}", where)
        return value

    def items(self, value: Any, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"expected a list, got {type(value).__name__}", where)
        return value

    def text(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"expected a string, got {type(value).__name__}", where)
        return value

    def integer(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"expected an integer, got {value!r:.64}", where)
        return value

    def number(self, value: Any, where: str) -> float | None:
        """A finite number from JSON or a decimal string ('12.50'); None for null or ''."""
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.fail(f"expected a number, got {type(value).__name__}", where)
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise self.fail(f"{value!r:.64} is not a number", where) from None
        if not math.isfinite(number) or abs(number) > MAX_NUMBER:
            raise self.fail(f"{value!r:.64} is out of range (a finite number up to {MAX_NUMBER:g})", where)
        return number

    def time(self, value: Any, where: str) -> datetime | None:
        """An RFC 3339 time; one without an offset is taken as UTC."""
        if value in (None, ""):
            return None
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise self.fail(f"{value!r:.64} is not an RFC 3339 time", where)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
