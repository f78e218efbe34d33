"""Building blocks of the spec models, shared by :mod:`.settings`, :mod:`.api.specs` and the detector modules.

The pydantic models are the one source of each custom resource's spec:
:mod:`.api.crdgen` turns them into the CRDs' OpenAPI schemas, and the operator
validates specs with the same models. A bound (``Field(ge=, le=, max_length=)``),
an enum (``Literal``/``Enum``), a pattern with its message (:class:`Matches`) or a
cross-field rule (:class:`Rule`: the CEL expression the apiserver runs and its
Python twin, declared together) is written once and holds in both places.

Each finding type declares its own settings model in its detector module (a
:class:`SettingsModel` subclass); :mod:`.settings` assembles them from the
registry into ``spec.detectors``. This module imports only :mod:`.models` and
:mod:`.errors` so that every side can import it without a cycle.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Callable, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError, core_schema

from .errors import ConfigError

# A usage percentile a right-sizer sizes for: any integer 50..100 (100 = the max). The statistics
# compute exactly the ones the policy names (stats.needed_percentiles); the CRD gets the same bounds.
Percentile = Annotated[int, Field(ge=50, le=100)]

RULES = "x-kubernetes-validations"


@dataclass(frozen=True)
class Rule:
    """A validation rule: the CEL expression the apiserver evaluates and its Python twin, side by side.

    ``check(value)`` is True when the value is valid; False reports the failure at ``field``
    (relative to the value, also the CEL ``fieldPath``); a string reports it at that relative
    path instead (e.g. ``[1].percent``), for rules over lists and maps. Used as ``Annotated``
    metadata for a field's value, or listed in a model's ``rules`` for the whole object.
    """

    cel: str
    message: str
    check: Callable[[Any], bool | str]
    field: str = ""

    def schema(self) -> dict[str, str]:
        out = {"rule": self.cel, "message": self.message}
        if self.field:
            out["fieldPath"] = f".{self.field}"
        return out

    def violation(self, value: Any) -> str | None:
        """None when valid, else where (relative) the failure is reported."""
        result = self.check(value)
        if result is True:
            return None
        return self.field if result is False else str(result)

    def validate(self, value: Any) -> Any:
        where = self.violation(value)
        if where is not None:
            raise PydanticCustomError("rule", "{message}", {"message": self.message, "at": where})
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        out = handler(schema)
        out.setdefault(RULES, []).append(self.schema())
        return out


def cel_quote(regex: str) -> str:
    """A regex as a CEL single-quoted string literal (CEL processes backslash escapes)."""
    return "'" + regex.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Matches:
    """A string pattern with the message people read when it does not match.

    The CRD gets ``pattern`` (unless ``pattern=False``: the apiserver would print a long regex
    before the message) and, with ``cel=True``, a ``self.matches(...)`` rule carrying the
    message; Python checks the same regex and raises the same message.
    """

    regex: str
    message: str
    cel: bool = False
    pattern: bool = True

    def __post_init__(self) -> None:
        assert self.regex.startswith("^") and self.regex.endswith("$"), self.regex

    def validate(self, value: str) -> str:
        if re.fullmatch(self.regex, value) is None:
            raise PydanticCustomError("pattern", "{message}", {"message": self.message})
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        out = handler(schema)
        if self.pattern:
            out["pattern"] = self.regex
        if self.cel:
            out.setdefault(RULES, []).append({"rule": f"self.matches({cel_quote(self.regex)})",
                                              "message": self.message})
        return out


def _model_rules(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    rules = getattr(cls, "rules", ())
    if rules:
        schema[RULES] = [rule.schema() for rule in rules]


SPEC_INPUT = {"spec_input": True}   # validation context of input documents: cross-field rules apply


class SettingsModel(BaseModel):
    """camelCase aliases (the CRD's keys), unknown keys rejected, immutable; ``rules`` hold cross-field rules.

    The cross-field ``rules`` are checked when a document is validated (:func:`validate_spec`, with the
    :data:`SPEC_INPUT` context), as the apiserver does; code that builds a model directly is trusted.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              frozen=True, json_schema_extra=_model_rules)
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self, info: ValidationInfo) -> "SettingsModel":
        if info.context and info.context.get("spec_input"):
            for rule in type(self).rules:
                rule.validate(self)
        return self


M = TypeVar("M", bound=SettingsModel)


def validate_spec(model: type[M], data: Any, *, source: str, prefix: str = "") -> M:
    """``data`` as ``model``, with the cross-field rules; a ConfigError names the first bad field."""
    try:
        return model.model_validate(data, context=SPEC_INPUT)
    except ValidationError as exc:
        raise config_error(exc, source=source, prefix=prefix) from None


def config_error(exc: ValidationError, *, source: str, prefix: str = "") -> ConfigError:
    """The first error of a model validation as a ConfigError naming the field (``spec.a.b[0].c``)."""
    first = exc.errors()[0]
    where = prefix.rstrip(".")
    parts = list(first["loc"])
    ctx = first.get("ctx") or {}
    for part in parts:
        where += f"[{part}]" if isinstance(part, int) else f"{'.' if where else ''}{part}"
    at = ctx.get("at")
    if at:
        where += at if at.startswith("[") else f"{'.' if where else ''}{at}"
    if first["type"] in ("rule", "pattern"):
        message = str(ctx["message"])
    else:
        text = str(first["msg"]).removeprefix("Value error, ")     # pydantic's prefix for our own ValueErrors
        message = f"{text} (got {_short(first.get('input'))})"
    return ConfigError(message, source=source, field=where or None)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def known_zone(value: str) -> str:
    """An IANA time zone this operator's tz database knows, else a ValueError saying what to write."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'") from exc
    return value


TZ_PATTERN = (r"^(UTC|(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)"
              r"/[A-Za-z][A-Za-z0-9_+-]{0,29}(/[A-Za-z][A-Za-z0-9_+-]{0,29})?)$")
TZ_MESSAGE = ("time zone must be an IANA name written as Area/Location, such as Europe/Berlin, America/New_York "
              "or Asia/Tokyo, or UTC (legacy aliases such as CET, EST or US/Eastern are not accepted)")

# An IANA zone: the CRD checks the form (pattern + CEL with the message); Python also checks it exists.
TimeZone = Annotated[str, Field(min_length=3, max_length=64, description=(
    "IANA time zone (Area/Location or UTC), e.g. Europe/Berlin.")), AfterValidator(known_zone),
    Matches(TZ_PATTERN, TZ_MESSAGE, cel=True)]

Weekday = Annotated[int, Field(ge=0, le=6)]
Weekdays = Annotated[list[Weekday], Field(max_length=7, description="Weekdays, 0=Monday .. 6=Sunday.",
                                          json_schema_extra={"x-kubernetes-list-type": "set"})]


class LimitPolicy(str, Enum):
    KEEP_RATIO = "KeepRatio"      # scale limits with requests, keep limit/request ratio
    NO_CPU_LIMIT = "NoCPULimit"   # drop CPU limits (avoid throttling), memory limit = keep ratio
    BURSTABLE = "Burstable"       # limit = request x burstFactor
    GUARANTEED = "Guaranteed"     # limit = request


class TimeWindow(SettingsModel):
    """Only size for samples inside this weekly window (e.g. business hours). Absent means all samples. Applied by snapshot scans and by live Prometheus scans (on the server, in the zone's local time, DST included)."""  # noqa: E501

    rules = (Rule("!has(self.endHour) || !has(self.startHour) || self.endHour > self.startHour",
                  "timeWindow.endHour must be later than timeWindow.startHour (hours 0-24 of one day)",
                  lambda w: w.end_hour > w.start_hour, field="endHour"),)

    days: Weekdays = [0, 1, 2, 3, 4]
    start_hour: int = Field(default=8, ge=0, le=23)
    end_hour: int = Field(default=20, ge=1, le=24)
    time_zone: TimeZone = "UTC"
