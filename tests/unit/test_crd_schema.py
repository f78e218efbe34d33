"""The CRDs in crds/ against the code they describe (pure: no apiserver).

- FinOpsPolicy ``spec.detectors`` / ``spec.guardrails`` mirror
  ``finops_operator.settings`` field for field: names (camelCase aliases),
  types, defaults, bounds, enums and patterns, checked by walking both.
- The defaults the apiserver would fill in equal ``PolicySettings()``.
- Every string/array/map/integer is bounded and every CEL rule has a message.
- The cron and time-zone patterns accept what croniter / zoneinfo accept
  (for the forms we allow) and reject the rest; pattern and CEL agree.
- Enums shared with models.py (finding type, target kind, verdict) agree.
- The chart's CRD copy is identical to crds/.
- The example CRs validate against the CRD schemas and load as settings.
"""
from __future__ import annotations

import copy
import enum
import re
import types
import typing
import zoneinfo
from pathlib import Path
from typing import Any

import annotated_types
import croniter
import jsonschema
import pytest
import yaml
from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from finops_operator import models, settings

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
CHART_CRD_DIR = ROOT / "charts" / "finops-operator" / "files" / "crds"
CRD_FILES = ("finopspolicies.yaml", "budgets.yaml", "savingsopportunities.yaml")


def load_schema(filename: str) -> dict[str, Any]:
    """The openAPIV3Schema of the single served version of a CRD file."""
    crd = yaml.safe_load((CRD_DIR / filename).read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


POLICY = load_schema("finopspolicies.yaml")
SPEC = POLICY["properties"]["spec"]


# --------------------------------------------------------------------------- settings mirror


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        assert len(args) == 1, f"unsupported union {annotation}"
        return args[0]
    return annotation


def _bounds(info: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            out["minimum"] = meta.ge
        elif isinstance(meta, annotated_types.Le):
            out["maximum"] = meta.le
        elif getattr(meta, "pattern", None):
            out["pattern"] = meta.pattern
    return out


def compare_model(model: type[BaseModel], schema: dict[str, Any], path: str) -> list[str]:
    """Differences between a pydantic model and a CRD object schema (empty = mirror)."""
    problems: list[str] = []
    props = schema.get("properties", {})
    wanted = {to_camel(name): (name, info) for name, info in model.model_fields.items()}
    for extra in sorted(set(props) - set(wanted)):
        problems.append(f"{path}.{extra}: in the CRD but not in settings.{model.__name__}")
    for alias, (name, info) in wanted.items():
        where = f"{path}.{alias}"
        if alias not in props:
            problems.append(f"{where}: settings.{model.__name__}.{name} is missing from the CRD")
            continue
        problems += compare_field(_unwrap_optional(info.annotation), info, props[alias], where)
    return problems


def compare_field(annotation: Any, info: Any, prop: dict[str, Any], where: str) -> list[str]:
    """Type, default, bounds, enum and pattern of one field."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        problems = [] if prop.get("type") == "object" else [f"{where}: expected an object"]
        default = info.get_default(call_default_factory=True)
        if default is None and "default" in prop:
            problems.append(f"{where}: settings default is None (absent) but the CRD defaults it")
        if isinstance(default, BaseModel) and prop.get("default") != {}:
            problems.append(f"{where}: needs `default: {{}}` so nested defaults are filled in")
        return problems + compare_model(annotation, prop, where)
    problems = _compare_type(annotation, prop, where)
    problems += _compare_default(info, prop, where)
    problems += _compare_bounds(info, prop, where)
    return problems


def _compare_type(annotation: Any, prop: dict[str, Any], where: str) -> list[str]:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        values = list(typing.get_args(annotation))
        if prop.get("type") != "integer" or prop.get("enum") != values:
            return [f"{where}: expected integer enum {values}, CRD has {prop.get('enum')}"]
        return []
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [m.value for m in annotation]
        if prop.get("type") != "string" or prop.get("enum") != values:
            return [f"{where}: expected string enum {values}, CRD has {prop.get('enum')}"]
        return []
    expected = {bool: "boolean", int: "integer", str: "string",
                # No floats in the CRD: settings' dollar floats are whole dollars in the CRD.
                float: "integer"}.get(annotation)
    if origin is list:
        expected = "array"
    elif origin is dict:
        expected = "object"
    if prop.get("type") != expected:
        return [f"{where}: settings type {annotation} wants CRD type {expected}, CRD has {prop.get('type')}"]
    if origin is list:
        (item,) = typing.get_args(annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return compare_model(item, prop["items"], f"{where}[]")
        item_type = {int: "integer", str: "string"}[item]
        if prop["items"].get("type") != item_type:
            return [f"{where}: list items should be {item_type}"]
    return []


def _compare_default(info: Any, prop: dict[str, Any], where: str) -> list[str]:
    default = info.get_default(call_default_factory=True)
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(default, float):
        if default != int(default):
            return [f"{where}: settings default {default} is not a whole number; the CRD has no floats"]
        default = int(default)
    if default is None:
        return [f"{where}: the CRD must not default a field settings leaves unset"] if "default" in prop else []
    if prop.get("default") != default or type(prop.get("default")) is not type(default):
        return [f"{where}: default {prop.get('default')!r} != settings default {default!r}"]
    return []


# Where settings.py sets no upper bound, the CRD still needs one ("bounds on every
# number"); these are the CRD's. The lead is asked to add the same `le=` to settings.
CRD_ONLY_MAXIMUM = {
    "detectors.cpu.minMonthlySavings": 1_000_000,
    "detectors.memory.minMonthlySavings": 1_000_000,
    "detectors.nodes.minNodeAgeHours": 8760,
    "guardrails.maxSingleChangeDollars": 10_000_000,
    "guardrails.approvalAboveDollars": 10_000_000,
}


def _compare_bounds(info: Any, prop: dict[str, Any], where: str) -> list[str]:
    problems = []
    bounds = _bounds(info)
    key = where.removeprefix("spec.")
    if "minimum" in bounds and prop.get("minimum") != bounds["minimum"]:
        problems.append(f"{where}: minimum {prop.get('minimum')} != settings ge={bounds['minimum']}")
    if "maximum" in bounds and prop.get("maximum") != bounds["maximum"]:
        problems.append(f"{where}: maximum {prop.get('maximum')} != settings le={bounds['maximum']}")
    if (prop.get("type") == "integer" and "enum" not in prop and "maximum" not in bounds
            and prop.get("maximum") != CRD_ONLY_MAXIMUM.get(key)):
        problems.append(f"{where}: CRD maximum {prop.get('maximum')} != CRD_ONLY_MAXIMUM {CRD_ONLY_MAXIMUM.get(key)}")
    if "pattern" in bounds:
        alternatives = re.fullmatch(r"\^\(([A-Za-z|]+)\)\$", bounds["pattern"])
        if alternatives:
            if prop.get("enum") != alternatives.group(1).split("|"):
                problems.append(f"{where}: settings pattern {bounds['pattern']} should be the CRD enum")
        elif prop.get("pattern") != bounds["pattern"]:
            problems.append(f"{where}: pattern {prop.get('pattern')} != settings {bounds['pattern']}")
    return problems


@pytest.mark.parametrize("section, model", [
    ("detectors", settings.DetectorSettings),
    ("guardrails", settings.GuardrailSettings),
    ("gitops", settings.GitOpsSettings),
])
def test_policy_section_mirrors_settings(section, model):
    assert compare_model(model, SPEC["properties"][section], f"spec.{section}") == []


def test_mode_and_group_by_mirror_settings():
    assert SPEC["properties"]["mode"]["enum"] == [m.value for m in settings.Mode]
    assert SPEC["properties"]["mode"]["default"] == settings.PolicySettings().mode.value
    group_by = settings.PolicySettings.model_fields["group_by"]
    assert compare_field(str, group_by, SPEC["properties"]["groupBy"], "spec.groupBy") == []


def test_comparison_catches_a_drift():
    """The mirror check itself fails on a changed default, bound or name."""
    drifted = copy.deepcopy(SPEC["properties"]["guardrails"])
    drifted["properties"]["maxOpenPrs"]["default"] = 6
    drifted["properties"]["maxRiskPercent"]["maximum"] = 99
    drifted["properties"]["maxPrs"] = drifted["properties"].pop("maxWorkloadsPerPr")
    problems = "\n".join(compare_model(settings.GuardrailSettings, drifted, "spec.guardrails"))
    assert "maxOpenPrs: default 6 != settings default 5" in problems
    assert "maxRiskPercent: maximum 99 != settings le=100" in problems
    assert "maxPrs: in the CRD but not in settings" in problems
    assert "max_workloads_per_pr is missing from the CRD" in problems


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill defaults the way the apiserver does: absent fields with a default, recursively."""
    if schema.get("type") == "object" and isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
    elif schema.get("type") == "array" and isinstance(value, list):
        value = [apply_defaults(schema["items"], item) for item in value]
    return value


def test_crd_defaults_equal_settings_defaults():
    spec = apply_defaults(SPEC, {"mode": "DryRun"})
    expected = settings.PolicySettings(mode=settings.Mode.DRY_RUN).model_dump(by_alias=True, mode="json",
                                                                              exclude_none=True)
    for key, value in expected.items():
        assert spec[key] == value, key


# --------------------------------------------------------------------------- bounds and messages


def walk(schema: dict[str, Any], path: str = ""):
    """Yield (path, schema) for every node of an OpenAPI schema."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("filename", CRD_FILES)
def test_everything_is_bounded(filename):
    unbounded = []
    for path, node in walk(load_schema(filename)):
        if path in (".apiVersion", ".kind", ".metadata"):
            continue
        kind = node.get("type")
        if kind == "string" and not ("maxLength" in node or "enum" in node or node.get("format") == "date-time"):
            unbounded.append(f"{path}: string without maxLength")
        elif kind == "array" and "maxItems" not in node:
            unbounded.append(f"{path}: array without maxItems")
        elif kind == "integer" and "enum" not in node and ("minimum" not in node or ("maximum" not in node and node.get("format") != "int64")):
            unbounded.append(f"{path}: integer without minimum/maximum")
        elif kind == "number":
            unbounded.append(f"{path}: floats are not allowed in the API")
        elif kind == "object" and "additionalProperties" in node and "maxProperties" not in node:
            unbounded.append(f"{path}: map without maxProperties")
    assert unbounded == []


@pytest.mark.parametrize("filename", CRD_FILES)
def test_every_cel_rule_has_a_message(filename):
    rules = [(path, rule) for path, node in walk(load_schema(filename))
             for rule in node.get("x-kubernetes-validations", [])]
    assert rules, "each CRD has cross-field rules"
    assert [(path, r["rule"]) for path, r in rules if len(r.get("message", "")) < 20] == []


@pytest.mark.parametrize("filename", CRD_FILES)
def test_conventions(filename):
    crd = yaml.safe_load((CRD_DIR / filename).read_text())
    (version,) = crd["spec"]["versions"]
    assert crd["spec"]["group"] == "finops.dev" and version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    assert "finops" in crd["spec"]["names"]["categories"]
    assert crd["spec"]["names"]["shortNames"][0].startswith("f")
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert "observedGeneration" in conditions["items"]["properties"] and "observedGeneration" in status
    assert "phase" not in status
    wide = [c for c in version["additionalPrinterColumns"] if c.get("priority") == 1]
    assert wide, "some printer columns are for -o wide only"


# --------------------------------------------------------------------------- patterns


def _pattern_and_rule(node: dict[str, Any]) -> tuple[str | None, str]:
    """The OpenAPI pattern (None if absent) and the regex of the CEL rule that carries the message."""
    (rule,) = [r["rule"] for r in node["x-kubernetes-validations"] if r["rule"].startswith("self.matches(")]
    return node.get("pattern"), re.fullmatch(r"self\.matches\('(.*)'\)", rule).group(1)


GOOD_CRON = ["0 6 * * *", "*/15 * * * *", "0 6 * * MON-FRI", "30 22 1,15 * *", "0 0 1 JAN *",
             "@daily", "5 4 * * 0", "0 */2 * * 1-5", "0 9-17/2 * * *"]
BAD_CRON = ["every day at six", "61 * * * *", "0 24 * * *", "* * * *", "0 6 * * * *", "0 6 32 * *",
            "@often", "0 6 * * mon", ""]


def test_cron_pattern():
    pattern, cel = _pattern_and_rule(SPEC["properties"]["schedule"])
    # Only CEL: an OpenAPI pattern would put the 900-character regex in front of the message.
    assert pattern is None
    pattern = cel
    for good in GOOD_CRON:
        assert re.match(pattern, good) and croniter.croniter.is_valid(good), good
    for bad in BAD_CRON:
        assert not re.match(pattern, bad), bad
    assert re.match(pattern, SPEC["properties"]["schedule"]["default"])


def test_time_zone_pattern():
    node = SPEC["properties"]["timeZone"]
    pattern, cel = _pattern_and_rule(node)
    assert pattern == cel
    zones = zoneinfo.available_timezones()
    accepted = {z for z in zones if re.match(pattern, z)}
    assert {"UTC", "Europe/Berlin", "America/New_York", "America/Argentina/Buenos_Aires",
            "America/Port-au-Prince", "Etc/GMT+5", "Asia/Kolkata"} <= accepted
    canonical = {z for z in zones if "/" in z and z.split("/")[0] in
                 {"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe",
                  "Indian", "Pacific", "Etc"}}
    assert canonical <= accepted, sorted(canonical - accepted)
    for bad in ["Mars/Olympus", "berlin", "Europe Berlin", "CET", "US/Eastern", "UTC+2", ""]:
        assert not re.match(pattern, bad), bad
    # The nested time zones (change windows, time windows) use the same pattern.
    window = SPEC["properties"]["guardrails"]["properties"]["changeWindows"]["items"]["properties"]["timeZone"]
    assert window["pattern"] == pattern


def test_budget_amount_and_quantity_patterns():
    spec = load_schema("budgets.yaml")["properties"]["spec"]["properties"]
    pattern, cel = _pattern_and_rule(spec["amount"])
    assert pattern == cel
    for good in ["5000", "1250.50", "0.5", "999999999999.99"]:
        assert re.match(pattern, good), good
    for bad in ["-100", "$500", "1,000", "1e3", "12.345", "01", ""]:
        assert not re.match(pattern, bad), bad
    hard = spec["freezeGrowth"]["properties"]["hard"]["additionalProperties"]
    pattern, cel = _pattern_and_rule(hard)
    assert pattern == cel
    for good in ["500m", "4", "16Gi", "1e3", "0.5", "100M"]:
        assert re.match(pattern, good), good
    for bad in ["lots", "-1", "4 Gi", "16GB", ""]:
        assert not re.match(pattern, bad), bad


# --------------------------------------------------------------------------- shared enums, chart copy, examples


def test_savings_opportunity_enums_match_models():
    schema = load_schema("savingsopportunities.yaml")
    spec = schema["properties"]["spec"]["properties"]
    assert spec["type"]["enum"] == [t.value for t in models.FindingType]
    assert spec["target"]["properties"]["kind"]["enum"] == [k.value for k in models.TargetKind]
    decision = schema["properties"]["status"]["properties"]["decision"]["properties"]
    assert decision["verdict"]["enum"] == [v.value for v in models.Verdict]
    assert decision["reasons"]["items"]["properties"]["verdict"]["enum"] == [v.value for v in models.Verdict]


@pytest.mark.parametrize("filename", CRD_FILES)
def test_chart_crd_copy_equals_source(filename):
    copy_path = CHART_CRD_DIR / filename
    assert copy_path.is_file(), f"{copy_path} is missing: cp crds/*.yaml {CHART_CRD_DIR.relative_to(ROOT)}/"
    assert copy_path.read_bytes() == (CRD_DIR / filename).read_bytes(), (
        f"{copy_path.relative_to(ROOT)} differs from crds/{filename}; crds/ is the source: "
        f"cp crds/*.yaml {CHART_CRD_DIR.relative_to(ROOT)}/")
    assert sorted(p.name for p in CHART_CRD_DIR.glob("*.yaml")) == sorted(CRD_FILES)


def openapi_validator(filename: str) -> jsonschema.Validator:
    """A JSON-schema validator for the structural parts of a CRD schema (CEL is checked by the apiserver)."""
    return jsonschema.Draft7Validator(load_schema(filename), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("example, filename", [
    ("finopspolicy.yaml", "finopspolicies.yaml"),
    ("budget.yaml", "budgets.yaml"),
])
def test_examples_are_valid(example, filename):
    doc = yaml.safe_load((ROOT / "examples" / "crs" / example).read_text())
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in openapi_validator(filename).iter_errors(doc)]
    assert errors == []
    if example == "finopspolicy.yaml":
        loaded = settings.settings_from_document(doc, source=example)
        assert loaded.guardrails.max_single_change_dollars == 500
        assert loaded.detectors.cpu.limit_policy is settings.LimitPolicy.NO_CPU_LIMIT


def test_schema_validator_rejects_a_bad_example():
    """The structural check above is not vacuous."""
    doc = yaml.safe_load((ROOT / "examples" / "crs" / "budget.yaml").read_text())
    doc["spec"]["amount"] = "-100"
    doc["spec"]["thresholds"][0]["percent"] = 0
    messages = [e.message for e in openapi_validator("budgets.yaml").iter_errors(doc)]
    assert any("does not match" in m for m in messages) and any("less than the minimum" in m for m in messages)
