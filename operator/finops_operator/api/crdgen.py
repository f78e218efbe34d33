"""Generate the CRDs' ``spec`` schemas from the spec models (the one source of their shape).

    python -m finops_operator.api.crdgen            # rewrite crds/ and the chart's copy
    python -m finops_operator.api.crdgen --check    # exit 1 with a diff when they differ

The pydantic JSON schema of :class:`.specs.PolicySpecSchema` and
:class:`.specs.BudgetSpecSchema` becomes a structural OpenAPI v3 schema
(Kubernetes rejects ``$ref``, ``anyOf`` without a structural type, and
``additionalProperties`` next to ``properties``): references are inlined,
optional fields (``X | None``) become plain ``X`` (absent means unset),
nested objects default to ``{}`` so the apiserver fills in their own defaults,
titles are dropped. Only ``spec`` is rewritten (plus the SavingsOpportunity
``spec.type`` enum, from the finding-type registry); status schemas, printer
columns, names and the header comments stay as written (ruamel round trip).
"""
from __future__ import annotations

import argparse
import copy
import difflib
import io
import sys
from pathlib import Path
from typing import Any

import yaml as yaml11
from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, FoldedScalarString

from ..detectors import REGISTRY
from ..models import TargetKind
from .budget import BudgetSpecSchema
from .notification import NotificationChannelSpecSchema, NotificationSubscriptionSpecSchema
from .report import FinOpsReportSpecSchema
from .specs import PolicySpecSchema

SPEC_MODELS: dict[str, type[BaseModel]] = {
    "finopspolicies.yaml": PolicySpecSchema, "budgets.yaml": BudgetSpecSchema,
    "notificationchannels.yaml": NotificationChannelSpecSchema,
    "notificationsubscriptions.yaml": NotificationSubscriptionSpecSchema,
    "finopsreports.yaml": FinOpsReportSpecSchema}
CRD_FILES = ("finopspolicies.yaml", "budgets.yaml", "savingsopportunities.yaml", "notificationchannels.yaml",
             "notificationsubscriptions.yaml", "finopsreports.yaml")
CHART_CRDS = Path("charts/finops-operator/files/crds")
COMMAND = "python -m finops_operator.api.crdgen"
KEY_ORDER = ("type", "description", "required", "default", "enum", "minimum", "maximum", "minLength", "maxLength",
             "pattern", "minItems", "maxItems", "maxProperties", "x-kubernetes-list-type",
             "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-validations", "properties", "items",
             "additionalProperties")
RULE_ORDER = ("rule", "message", "fieldPath")
DROPPED = {"title", "$defs"}
TEXT_WIDTH = 100   # descriptions and messages are folded (>-) at about this width; rules stay on one line


class SchemaError(ValueError):
    """The models use a JSON-schema construct this generator cannot make structural."""


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``node`` with ``$ref`` inlined and ``X | None`` unwrapped (sibling keys win over the referenced ones)."""
    node = dict(node)
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise SchemaError(f"a union of {len(options)} types cannot be structural: {options}")
        if node.get("default", ...) is None:
            del node["default"]
        node = {**_resolve(options[0], defs), **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**_resolve(node.pop("allOf")[0], defs), **node}
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[-1]])
        node = {**_resolve(target, defs), **node}
    for key in ("anyOf", "oneOf", "allOf", "not", "$ref"):
        if key in node:
            raise SchemaError(f"{key} is not allowed in a structural schema: {node}")
    return node


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A structural OpenAPI v3 schema (Kubernetes CRD rules) from a pydantic JSON schema node."""
    node = _resolve(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED or (key == "additionalProperties" and value is False):
            continue
        if key == "properties":
            value = {name: _property(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            value = structural(value, defs)
        elif key == "x-kubernetes-validations":
            value = [{k: rule[k] for k in RULE_ORDER if k in rule} for rule in value]
        out[key] = value
    if "properties" in out and "additionalProperties" in out:
        raise SchemaError("properties and additionalProperties exclude each other in a structural schema")
    unknown = set(out) - set(KEY_ORDER)
    if unknown:
        raise SchemaError(f"unexpected schema keys {sorted(unknown)}")
    return {key: out[key] for key in KEY_ORDER if key in out}


def _property(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    out = structural(node, defs)
    # A nested object defaults to {}: the apiserver then fills in its fields' own defaults.
    if "properties" in out and isinstance(out.get("default"), dict):
        out = {**out, "default": {}}
        out = {key: out[key] for key in KEY_ORDER if key in out}
    return out


def spec_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return structural(schema, schema.get("$defs", {}))


def finding_types() -> list[str]:
    """SavingsOpportunity ``spec.type``: the finding type of every registered detector."""
    return [cls.finding_type.value for cls in REGISTRY.values()]


def target_kinds() -> list[str]:
    """SavingsOpportunity ``spec.target.kind``: every kind a registered finding type may target."""
    return [kind.value for kind in TargetKind]


# --------------------------------------------------------------------------- YAML


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _folded(text: str) -> str:
    """Long prose as a folded block scalar (>-), broken at spaces; the text itself is unchanged."""
    if len(text) <= TEXT_WIDTH or "  " in text or "\n" in text or text != text.strip():
        return text
    folded, start, positions = FoldedScalarString(text), 0, []
    while len(text) - start > TEXT_WIDTH:
        cut = text.rfind(" ", start + 1, start + TEXT_WIDTH)
        if cut < 0:
            break
        positions.append(cut)
        start = cut + 1
    folded.fold_pos = positions  # type: ignore[attr-defined]
    return folded


def _commented(value: Any) -> Any:
    """Plain data as ruamel nodes; lists of scalars in flow style ([a, b]) as the hand-written CRDs had."""
    if isinstance(value, dict):
        out = CommentedMap()
        for key, sub in value.items():
            out[key] = _folded(sub) if key in ("description", "message") and isinstance(sub, str) else _commented(sub)
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_commented(v) for v in value)
        if all(not isinstance(v, (dict, list)) for v in value):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str):
        return _unambiguous(value)
    return value


def _unambiguous(text: str) -> str:
    """Quoted when a YAML 1.1 reader (PyYAML, kubectl's older parsers) would not read it back as this string:
    17:00 is the integer 1020 there, yes/no are booleans."""
    try:
        same = yaml11.safe_load(text) == text
    except yaml11.YAMLError:
        same = False
    return text if same else DoubleQuotedScalarString(text)


def render(root: Path, filename: str) -> str:
    """The CRD file with its generated parts replaced, everything else as written."""
    yaml = _yaml()
    crd = yaml.load((root / "crds" / filename).read_text())
    (version,) = crd["spec"]["versions"]
    properties = version["schema"]["openAPIV3Schema"]["properties"]
    if filename in SPEC_MODELS:
        properties["spec"] = _commented(spec_schema(SPEC_MODELS[filename]))
    if filename == "savingsopportunities.yaml":
        properties["spec"]["properties"]["type"]["enum"] = _commented(finding_types())
        target = properties["spec"]["properties"]["target"]["properties"]["kind"]
        target["enum"] = _commented(target_kinds())
    out = io.StringIO()
    yaml.dump(crd, out)
    return out.getvalue()


def targets(root: Path) -> dict[Path, str]:
    """Every generated file (crds/ and the chart's byte-for-byte copy) and its wanted content."""
    wanted: dict[Path, str] = {}
    for filename in CRD_FILES:
        text = render(root, filename)
        wanted[root / "crds" / filename] = text
        wanted[root / CHART_CRDS / filename] = text
    return wanted


def drift(root: Path) -> list[str]:
    """Unified diffs of the files that differ from what the models generate (empty: in sync)."""
    diffs = []
    for path, text in targets(root).items():
        current = path.read_text() if path.is_file() else ""
        if current != text:
            rel = path.relative_to(root)
            diffs.append("".join(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                      f"a/{rel}", f"b/{rel}")))
    return diffs


def default_root() -> Path:
    checkout = Path(__file__).resolve().parents[3]
    return checkout if (checkout / "crds").is_dir() else Path.cwd()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 with a diff when files differ")
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    root = args.root or default_root()
    if args.check:
        diffs = drift(root)
        if diffs:
            sys.stdout.write("".join(diffs))
            print(f"\nThe CRDs differ from the spec models; regenerate them with: {COMMAND}", file=sys.stderr)
            return 1
        return 0
    for path, text in targets(root).items():
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
