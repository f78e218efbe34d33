"""The CRDs in crds/ against the code they describe (pure: no apiserver).

- The FinOpsPolicy and Budget ``spec`` schemas (and the SavingsOpportunity
  ``spec.type`` enum) are generated from the spec models by
  ``python -m finops_operator.api.crdgen``; the files equal its output (drift
  fails here, with the command that fixes it) and are structural.
- The defaults the apiserver would fill in equal ``PolicySettings()``.
- Every string/array/map/integer is bounded and every CEL rule has a message.
- The cron and time-zone patterns accept what croniter / zoneinfo accept
  (for the forms we allow) and reject the rest; pattern and CEL agree.
- Enums shared with models (finding type, target kind, verdict) agree.
- The chart's CRD copy is identical to crds/.
- The example CRs validate against the CRD schemas and load as settings.
"""
from __future__ import annotations

import copy
import re
import zoneinfo
from pathlib import Path
from typing import Any

import croniter
import jsonschema
import pytest
import yaml

from finops_operator import models, settings
from finops_operator.api import budget, crdgen, specs
from finops_operator.detectors import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
CHART_CRD_DIR = ROOT / "charts" / "finops-operator" / "files" / "crds"
CRD_FILES = crdgen.CRD_FILES


def load_schema(filename: str) -> dict[str, Any]:
    """The openAPIV3Schema of the single served version of a CRD file."""
    crd = yaml.safe_load((CRD_DIR / filename).read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


POLICY = load_schema("finopspolicies.yaml")
SPEC = POLICY["properties"]["spec"]


# --------------------------------------------------------------------------- generated from the models


def test_crds_are_generated_from_the_spec_models():
    """crds/ and the chart's copy are what ``python -m finops_operator.api.crdgen`` writes (no drift)."""
    diffs = crdgen.drift(ROOT)
    assert diffs == [], ("the CRDs differ from the spec models (api/specs.py, settings.py, detector settings); "
                         f"regenerate them with: {crdgen.COMMAND}\n" + "".join(diffs)[:4000])


def test_the_drift_check_fails_on_a_changed_file(tmp_path, capsys):
    """--check is not vacuous: a hand edit of a bound in a copy of the repository is reported with a diff."""
    for part in ("crds", crdgen.CHART_CRDS):
        (tmp_path / part).mkdir(parents=True)
        for filename in CRD_FILES:
            (tmp_path / part / filename).write_bytes((ROOT / part / filename).read_bytes())
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 0
    edited = tmp_path / "crds" / "finopspolicies.yaml"
    text = edited.read_text()
    assert text.count("maximum: 10000\n") >= 1
    edited.write_text(text.replace("maximum: 10000\n", "maximum: 99999\n", 1))
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "-" in out.out and "maximum: 99999" in out.out and crdgen.COMMAND in out.err
    assert crdgen.main(["--root", str(tmp_path)]) == 0          # regenerating repairs it
    assert edited.read_text() == (ROOT / "crds" / "finopspolicies.yaml").read_text()


def test_generated_schemas_are_structural():
    """No $ref/anyOf/oneOf, no properties next to additionalProperties, no titles, types everywhere."""
    for filename in crdgen.SPEC_MODELS:
        for path, node in walk(load_schema(filename)["properties"]["spec"], "spec"):
            assert not {"$ref", "anyOf", "oneOf", "allOf", "title", "nullable"} & set(node), path
            assert "type" in node, f"{path}: a structural schema needs a type"
            assert not ("properties" in node and "additionalProperties" in node), path


def test_generator_refuses_a_union_it_cannot_make_structural():
    from pydantic import BaseModel as Model

    class Bad(Model):
        either: int | str

    with pytest.raises(crdgen.SchemaError, match="union"):
        crdgen.spec_schema(Bad)


def test_crd_rules_are_the_models_rules():
    """The CEL rules in the CRD come from the models' Rule declarations (and vice versa)."""
    spec = SPEC["properties"]
    assert spec["guardrails"]["x-kubernetes-validations"] == [r.schema() for r in settings.GuardrailSettings.rules]
    assert SPEC["x-kubernetes-validations"] == [r.schema() for r in specs.PolicySpecSchema.rules]
    budget_spec = load_schema("budgets.yaml")["properties"]["spec"]
    assert budget_spec["x-kubernetes-validations"] == [r.schema() for r in budget.BudgetSpecSchema.rules]


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


def test_python_rejects_what_the_apiserver_rejects():
    """Every invalid FinOpsPolicy/Budget the apiserver test rejects is rejected by the operator's models too."""
    from finops_operator.api.budget import read_budget
    from finops_operator.api.policy import read_policy
    from finops_operator.errors import ConfigError
    from tests.integration import test_crds as apiserver

    for case, kind, path, value, _ in apiserver.INVALID:
        if kind == "opportunity":
            continue
        doc = apiserver.base_document(kind, "finops-system")
        if kind == "policy":                        # the operator also needs a data source
            doc["spec"]["dataSources"] = {"prometheus": {"url": "http://p:9090"}}
        read = (lambda d: read_policy(d, operator_ns="finops-system")) if kind == "policy" else read_budget
        read(doc)                                   # the base document is valid here too
        with pytest.raises(ConfigError) as caught:
            read(apiserver._set(doc, path, value))
        assert caught.value.field and caught.value.field.startswith("spec"), (case, caught.value)


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
    # spec.type is generated from the finding-type registry (one detector module per type).
    assert spec["type"]["enum"] == [cls.finding_type.value for cls in REGISTRY.values()] == crdgen.finding_types()
    assert set(spec["type"]["enum"]) == {t.value for t in models.FindingType}
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
