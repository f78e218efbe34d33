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

from .errors import QuantityError

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
