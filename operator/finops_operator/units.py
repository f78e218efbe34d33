"""Kubernetes resource quantities: parse to plain numbers, format back.

CPU is handled in cores (float), memory in bytes (int). Parsing follows
k8s.io/apimachinery/pkg/api/resource: decimal SI suffixes (k, M, G, T, P, E),
binary suffixes (Ki, Mi, Gi, Ti, Pi, Ei), the milli suffix ``m`` and plain or
exponent numbers (``1e3``). Anything else raises :class:`QuantityError`,
which names the offending text so callers can add the file and field.
"""
from __future__ import annotations

import math
import re
from datetime import timedelta

from .errors import ConfigError, QuantityError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9,
            "T": 1e12, "P": 1e15, "E": 1e18}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$")

MI = 2**20
GI = 2**30


def parse_quantity(value: str | int | float, *, what: str = "quantity") -> float:
    """Parse any Kubernetes quantity to a float in base units."""
    if isinstance(value, bool):
        raise QuantityError(f"{what}: expected a quantity such as '500m' or '2Gi', got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        match = _QUANTITY.match(text)
        if not match:
            raise QuantityError(
                f"{what}: {value!r} is not a Kubernetes quantity "
                "(use e.g. '250m' or '1' for CPU, '512Mi' or '2Gi' for memory)")
        digits, exponent, suffix = match.groups()
        number = float(digits)
        if exponent:
            number *= 10 ** int(exponent[1:])
        elif suffix in _BINARY:
            number *= _BINARY[suffix]
        elif suffix:
            number *= _DECIMAL[suffix]
    if math.isnan(number) or math.isinf(number):
        raise QuantityError(f"{what}: {value!r} is not a finite number")
    if number < 0:
        raise QuantityError(f"{what}: {value!r} is negative; resource quantities must be >= 0")
    return number


def parse_cpu(value: str | int | float, *, what: str = "cpu") -> float:
    """CPU quantity to cores: '250m' -> 0.25, '1' -> 1.0, 2 -> 2.0."""
    return parse_quantity(value, what=what)


def parse_memory(value: str | int | float, *, what: str = "memory") -> int:
    """Memory quantity to bytes: '512Mi' -> 536870912, '1G' -> 1000000000."""
    return int(math.ceil(parse_quantity(value, what=what)))


def round_up(value: float, step: float) -> float:
    """Round ``value`` up to a whole number of ``step`` (with float noise tolerated)."""
    if step <= 0:
        return value
    units = value / step
    return math.ceil(units - 1e-9) * step


def format_cpu(cores: float, *, like: str | int | float | None = None) -> str:
    """Format cores as Kubernetes writes them: whole cores as '2', else millicores '250m'.

    ``like`` is the value being replaced; when it was written in whole cores
    (``1``, ``"2"``) and the new value is a whole number of cores we keep that style.
    """
    millis = int(round(cores * 1000))
    if millis % 1000 == 0 and millis > 0:
        if like is None or not str(like).strip().endswith("m"):
            return str(millis // 1000)
    return f"{millis}m"


def format_memory(num_bytes: int | float, *, like: str | int | float | None = None) -> str:
    """Format bytes the way people write memory: '2Gi' when whole, else 'NNNMi'.

    Keeps the decimal style ('G'/'M') when the replaced value used it, and
    plain bytes when the replaced value was a plain number.
    """
    num = int(math.ceil(num_bytes))
    style = _memory_style(like)
    if style == "bytes":
        return str(num)
    if style == "decimal":
        if num % 10**9 == 0:
            return f"{num // 10**9}G"
        return f"{int(math.ceil(num / 10**6))}M"
    if num % GI == 0 and num >= GI:
        return f"{num // GI}Gi"
    if num % MI == 0:
        return f"{num // MI}Mi"
    if num % 1024 == 0:
        return f"{num // 1024}Ki"
    return f"{int(math.ceil(num / MI))}Mi"


def _memory_style(like: str | int | float | None) -> str:
    if like is None:
        return "binary"
    text = str(like).strip()
    if re.fullmatch(r"\d+", text):
        return "bytes"
    if re.search(r"[kMGTPE]$", text):
        return "decimal"
    return "binary"


def human_bytes(num_bytes: float) -> str:
    """Short human text for reports: 1.5Gi, 300Mi."""
    if num_bytes >= GI:
        return f"{num_bytes / GI:.2f}".rstrip("0").rstrip(".") + "Gi"
    return f"{num_bytes / MI:.0f}Mi"


# --------------------------------------------------------------------------- durations

DURATION_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# Prometheus/Go style without decimals; at most 9 digits a part, so no sum overflows (here or in CEL).
DURATION_PATTERN = r"^([0-9]{1,9}(ms|s|m|h|d|w))+$"
_DURATION = re.compile(DURATION_PATTERN)
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")


def duration_ms_cel(var: str = "self") -> str:
    """A CEL expression for the length in milliseconds of the duration string ``var``, with the units of
    :func:`parse_duration` (CEL's own duration() knows no days or weeks)."""
    unit = "1000"                                                     # 's', the last suffix left
    for name in ("m", "h", "d", "w", "ms"):                           # 'ms' is tested before 's' and 'm'
        unit = f"p.endsWith('{name}') ? {DURATION_UNITS_MS[name]} : {unit}"
    return f"{var}.findAll('[0-9]+(ms|s|m|h|d|w)').map(p, int(p.findAll('[0-9]+')[0]) * ({unit})).sum()"


def parse_duration(text: object, *, maximum: timedelta | None = None, source: str | None = None,
                   field: str = "duration") -> timedelta:
    """'14d', '336h', '1h30m', '2w' -> a positive timedelta, at most ``maximum``; ConfigError names ``field``."""
    if not isinstance(text, str) or len(text) > 64 or not _DURATION.match(text):
        raise ConfigError(f"{text!r} is not a duration; write e.g. 14d, 336h or 2w (units ms, s, m, h, d, w; "
                          "no spaces, no decimals, at most 9 digits a number)", source=source, field=field)
    ms = sum(int(n) * DURATION_UNITS_MS[unit] for n, unit in _DURATION_PART.findall(text))
    if ms <= 0:
        raise ConfigError(f"{text!r} is zero; write a positive duration", source=source, field=field)
    if maximum is not None and ms > maximum / timedelta(milliseconds=1):
        raise ConfigError(f"{text!r} is longer than the maximum of {_days(maximum)}", source=source, field=field)
    return timedelta(milliseconds=ms)


def _days(delta: timedelta) -> str:
    return f"{delta.days} days" if delta == timedelta(days=delta.days) else str(delta)
