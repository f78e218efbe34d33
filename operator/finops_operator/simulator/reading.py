"""Reading a YAML mapping with errors that name the source file and the field path."""
from __future__ import annotations

from typing import Any

from ..errors import ConfigError


class Reader:
    """A mapping being read at ``path``; every error names source and path."""

    def __init__(self, data: Any, path: str, source: str, allowed: set[str]):
        self.path, self.source = path, source
        if not isinstance(data, dict):
            self.fail(f"expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(map(str, data)) - allowed)
        if unknown:
            self.fail(f"unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}",
                      key=unknown[0])
        self.data = data

    def where(self, key: str | None) -> str:
        return self.path if key is None else (f"{self.path}.{key}" if self.path else key)

    def fail(self, message: str, key: str | None = None) -> None:
        raise ConfigError(message, source=self.source, field=self.where(key) or None)

    def get(self, key: str, kind: type | tuple, default: Any = ..., *, low: float | None = None) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is ...:
                self.fail("is required", key)
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            self.fail(f"expected {' or '.join(k.__name__ for k in kinds)}, got {value!r}", key)
        if low is not None and value < low:
            self.fail(f"must be >= {low}, got {value!r}", key)
        return value

    def strmap(self, key: str) -> dict[str, str]:
        value = self.get(key, dict, {})
        return {str(k): str(v) for k, v in value.items()}

    def items(self, key: str, required: bool = False) -> list[tuple[str, Any]]:
        value = self.get(key, list, ... if required else [])
        return [(f"{self.where(key)}[{i}]", item) for i, item in enumerate(value)]


def choice(obj: Reader, key: str, options: tuple[str, ...], default: Any = ...) -> str:
    value = obj.get(key, str, default)
    if value not in options and value is not default:
        obj.fail(f"unknown value {value!r}; use one of {', '.join(options)}", key)
    return value
