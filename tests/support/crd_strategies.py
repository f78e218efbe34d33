"""Hypothesis strategies derived from the openAPIV3Schema of a CRD in ``crds/``, plus hostile mutations.

    schema = openapi_schema("FinOpsPolicy")
    objects = generate(fuzzed(schema, overrides={...}, hostile_values={...}), 300, seed=7)

:func:`valid` walks a schema node (object / array / string / integer / boolean, enums,
patterns, bounds, ``additionalProperties``, ``x-kubernetes-list-type: set``) and draws a
value the schema allows (cross-field CEL rules are not modelled: some draws break them,
which the apiserver must then reject by field). :func:`fuzzed` draws such an object and
then replaces 0..4 leaves with hostile values: boundary and out-of-range numbers, wrong
types, empty/maximal/over-long/huge strings, unicode (RTL override, zero-width, emoji,
NUL), control characters and CRLF, plus per-path domain values (``hostile_values``). It
returns :class:`Fuzzed` with the object and the paths it made hostile.

:func:`generate` draws ``n`` examples deterministically (``derandomize`` with a fixed
seed, no example database), so CI sees the same objects every run.

:func:`schema_path_exists` checks that a field path an error names (``spec.git.paths[0]``,
``metadata.annotations[finops.dev/ledger]``) is a real field of the kind.
"""
from __future__ import annotations

import copy
import hashlib
import json
import random
import re
from datetime import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

CRDS = Path(__file__).resolve().parents[2] / "crds"
CRD_FILES = {"FinOpsPolicy": "finopspolicies.yaml", "Budget": "budgets.yaml",
             "SavingsOpportunity": "savingsopportunities.yaml"}
MAX_LIST = 3          # valid lists/maps stay small: the interesting part is the values
HUGE = 100_000        # a "huge" string: far past every maxLength, well under the apiserver's 3 MiB body limit

UNICODE = ["\u202eevil", "zero\u200bwidth", "caf\u00e9", "\U0001f4b8\U0001f525", "\u0130stanbul", "\ufeffbom",
           "\u0000nul", "a\u0085b", "\ud7ff\ue000", "\u05e9\u05dc\u05d5\u05dd", "\u2028line-sep"]
CONTROL = ["a\r\nInjected: 1", "\r\n", "tab\there", "bell\x07", "esc\x1b[31m", "\x7f", "line\nbreak", " padded "]


def openapi_schema(kind: str) -> dict[str, Any]:
    """The served version's openAPIV3Schema of ``kind`` from crds/ (YAML anchors and merge keys resolved)."""
    crd = yaml.safe_load((CRDS / CRD_FILES[kind]).read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("served"))
    return version["schema"]["openAPIV3Schema"]


# --------------------------------------------------------------------------- valid values


Overrides = Mapping[str, st.SearchStrategy[Any]]


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
    if "pattern" in schema:
        limit = schema.get("maxLength", 10_000)
        pattern = re.compile(schema["pattern"], re.ASCII)
        return st.from_regex(pattern, fullmatch=True).filter(lambda s: schema.get("minLength", 0) <= len(s) <= limit)
    if schema.get("format") == "date-time":
        return st.datetimes(datetime(1970, 1, 1), datetime(2100, 1, 1)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=low, max_size=max(low, high))


def _integer(schema: dict[str, Any]) -> st.SearchStrategy[int]:
    low, high = schema.get("minimum", -(2 ** 31)), schema.get("maximum", 2 ** 31)
    edges = sorted({low, high, max(low, min(high, 0)), max(low, min(high, 1))})
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _object(schema: dict[str, Any], path: str, ov: Overrides) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties") or {}
    if props:
        required = set(schema.get("required") or ())
        sub = {k: valid(props[k], f"{path}.{k}" if path else k, ov) for k in props}
        return st.fixed_dictionaries({k: s for k, s in sub.items() if k in required},
                                     optional={k: s for k, s in sub.items() if k not in required})
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        size = min(schema.get("maxProperties", MAX_LIST), MAX_LIST)
        keys = st.from_regex(re.compile(r"[a-z][a-z0-9.-]{0,20}[a-z0-9]", re.ASCII), fullmatch=True)
        return st.dictionaries(keys, valid(extra, f"{path}.*", ov), max_size=size)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
        return st.dictionaries(st.text(min_size=1, max_size=10), leaf, max_size=MAX_LIST)
    return st.just({})


def valid(schema: dict[str, Any], path: str, ov: Overrides) -> st.SearchStrategy[Any]:
    """A value ``schema`` allows at ``path`` (``ov`` replaces the strategy at exact paths; ``[]``/``*`` mark items)."""
    if path in ov:
        return ov[path]
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        return _object(schema, path, ov)
    if kind == "array":
        items = valid(schema.get("items") or {}, f"{path}[]", ov)
        low = schema.get("minItems", 0)
        high = max(low, min(schema.get("maxItems", MAX_LIST), MAX_LIST))
        unique = schema.get("x-kubernetes-list-type") == "set"
        return st.lists(items, min_size=low, max_size=high, unique_by=_freeze if unique else None)
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return _integer(schema)
    if kind == "boolean":
        return st.booleans()
    return st.none()


def _freeze(value: Any) -> Any:
    return repr(value)


# --------------------------------------------------------------------------- hostile values


def hostile_for(schema: dict[str, Any], rnd: random.Random) -> st.SearchStrategy[Any]:
    """Values that break or stress ``schema``: bounds +-1, wrong types, odd strings (``rnd`` picks which)."""
    kind = schema.get("type")
    wrong_type = [None, [], {}, "", 1.5, True, "1e400", -1]
    if kind == "integer":
        low, high = schema.get("minimum", 0), schema.get("maximum", 2 ** 31)
        return st.just(rnd.choice([low - 1, high + 1, low, high, 2 ** 63 - 1, -(2 ** 63), 2 ** 64, 2 ** 31, 0, -1,
                                   10 ** 18, 1.5, "12", "", None, True]))
    if kind == "boolean":
        return st.just(rnd.choice(["true", "false", 1, 0, None, "yes"]))
    if kind == "string":
        top = schema.get("maxLength", 256)
        choices: list[Any] = ["", "x" * top, "x" * (top + 1), "y" * HUGE, *UNICODE, *CONTROL, 12, None, ["a"]]
        if "enum" in schema:
            first = str(rnd.choice(schema["enum"]))
            choices += [first.lower(), first.upper(), f" {first}", f"{first}\n", first.replace("a", "\u0430")] * 3
        if rnd.random() < 0.2:
            return st.text(st.characters(exclude_categories=("Cs",)), max_size=64)
        return st.just(rnd.choice(choices))
    if kind == "array":
        item = valid(schema.get("items") or {}, "[]", {})
        top = schema.get("maxItems", 8)
        return rnd.choice([st.lists(item, min_size=top + 1, max_size=top + 1), item.map(lambda v: [v, v]),
                           st.just(rnd.choice([[None], "a,b", {}, None, []]))])
    if kind == "object":
        return st.just(rnd.choice([*wrong_type, {"unknownField": "x"}, {}]))
    return st.just(rnd.choice(wrong_type))


@dataclass
class Fuzzed:
    """One generated object and the (dotted) paths whose values were made hostile."""

    body: dict[str, Any]
    hostile: list[str] = field(default_factory=list)

    def related(self, path: str) -> bool:
        """Whether an error at ``path`` is about a hostile path (the same, an ancestor or a descendant)."""
        norm = _normal(path)
        return any(h == norm or h.startswith(norm + ".") or norm.startswith(h + ".") for h in map(_normal, self.hostile))


def _normal(path: str) -> str:
    return re.sub(r"\[[^\]]*\]", "", path).strip(".")


Parts = tuple  # a path as keys and list indexes: ("spec", "git", "paths", 0)


def dotted(parts: Parts) -> str:
    """("spec", "headers", "X-A.b", "paths", 0) -> 'spec.headers[X-A.b].paths[0]' (map keys in brackets when odd)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part}]"
    return out


def _parts(path: str) -> Parts:
    return tuple(int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"[^.\[\]]+|\[\d+\]", path))


def _leaves(value: Any, schema: dict[str, Any], parts: Parts = ()) -> list[tuple[Parts, dict[str, Any]]]:
    """(path, schema) of every value in ``value`` that has a schema, parents included."""
    out = [(parts, schema)] if parts else []
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), dict) else None
        for key, sub in value.items():
            sub_schema = props.get(key) or extra
            if sub_schema is not None:
                out += _leaves(sub, sub_schema, (*parts, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, sub in enumerate(value):
            out += _leaves(sub, schema["items"], (*parts, i))
    return out


def _set(obj: dict[str, Any], parts: Parts, value: Any) -> None:
    node: Any = obj
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


@st.composite
def _mutated(draw, base: st.SearchStrategy[dict[str, Any]], schema: dict[str, Any],
             hostile_values: Mapping[str, list[Any]], max_mutations: int) -> Fuzzed:
    body = copy.deepcopy(draw(base))   # strategies share objects (sampled_from, just): never mutate those
    # Uniform choices: hypothesis favours small values and first elements, so seed a Random from the object.
    salt = json.dumps([body, draw(st.integers(0, 2 ** 64))], sort_keys=True, default=str)
    rnd = random.Random(hashlib.sha256(salt.encode("utf-8", "surrogatepass")).hexdigest())
    fuzz = Fuzzed(body)
    # Half the objects get only domain values (mostly schema-valid, so they reach the operator).
    domain_share = rnd.choice([1.0, 1.0, 0.4, 0.2])
    for _ in range(rnd.choice([0, 1, 1, 2, 2, 3, max_mutations])):
        leaves = [(p, s) for p, s in _leaves(body, schema) if len(p) > 1]
        if rnd.random() < 0.05:  # now and then the whole spec or status
            leaves = [(p, s) for p, s in _leaves(body, schema) if p in (("spec",), ("status",))]
        domain = sorted(p for p in hostile_values if _exists(body, p))
        if domain and rnd.random() < domain_share:
            path = rnd.choice(domain)
            parts, value = _parts(path), rnd.choice(hostile_values[path])
        elif leaves and domain_share < 1.0:
            parts, sub = rnd.choice(leaves)
            value = draw(hostile_for(sub, rnd))
        else:
            continue
        _set(body, parts, copy.deepcopy(value))
        fuzz.hostile.append(dotted(parts))
    return fuzz


def _exists(obj: Any, path: str) -> bool:
    """Whether the parent of ``path`` is a mapping in ``obj`` (so the field can be set or added)."""
    node = obj
    for part in _parts(path)[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return False
        elif not (isinstance(node, dict) and part in node):
            return False
        node = node[part]
    return isinstance(node, dict)


def fuzzed(schema: dict[str, Any], *, overrides: Overrides, hostile_values: Mapping[str, list[Any]],
           max_mutations: int = 4) -> st.SearchStrategy[Fuzzed]:
    """An object valid for ``schema`` (with ``overrides``) and then 0..``max_mutations`` hostile leaves.

    ``hostile_values`` maps a dotted path (``spec.dataSources.prometheus.historyWindow``) to domain values
    tried there; it may name a path not drawn yet, whose parent exists, to add the field.
    """
    return _mutated(valid(schema, "", overrides), schema, hostile_values, max_mutations)


@dataclass(frozen=True)
class Plan:
    """How to fuzz one kind: its schema, overrides for the valid draws, and domain values per path."""

    schema: dict[str, Any]
    overrides: Mapping[str, st.SearchStrategy[Any]]
    hostile: Mapping[str, list[Any]]

    def cases(self) -> list[tuple[str, Any]]:
        return [(path, value) for path, values in self.hostile.items() for value in values]

    def corpus(self, n: int, *, seed_value: int) -> list[Fuzzed]:
        """Each domain value once on a valid object (a minimal case), then random objects up to ``n``."""
        cases = self.cases()
        bases = generate(valid(self.schema, "", self.overrides), len(cases), seed_value=seed_value)
        out = []
        for (path, value), base in zip(cases, bases):
            body = copy.deepcopy(base)
            put(body, path, copy.deepcopy(value))
            out.append(Fuzzed(body, [path]))
        strategy = fuzzed(self.schema, overrides=self.overrides, hostile_values=self.hostile)
        return out + generate(strategy, max(0, n - len(out)), seed_value=seed_value + 1)


def put(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path (no list indexes), creating missing or non-mapping parents."""
    *parents, last = path.split(".")
    node = obj
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[last] = value


def generate(strategy: st.SearchStrategy[Any], n: int, *, seed_value: int) -> list[Any]:
    """``n`` examples of ``strategy``, the same ones on every run (fixed seed, derandomized, no database)."""
    out: list[Any] = []

    @seed(seed_value)
    @settings(max_examples=n, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: Any) -> None:
        out.append(example)

    collect()
    return out


# --------------------------------------------------------------------------- field paths


def schema_path_exists(schema: dict[str, Any], path: str) -> bool:
    """Whether ``path`` (apiserver or operator form) names a field of ``schema``; metadata.* is free-form.

    Map keys may hold dots (the apiserver writes ``spec.freezeGrowth.hard.limits.memory``), so a map
    key may span several dotted parts.
    """
    parts = re.findall(r"\[[^\]]*\]|[^.\[\]]+", path.strip())
    if not parts:
        return False
    if parts[0] == "metadata":
        return True
    return _walk(schema, parts)


def _walk(node: dict[str, Any] | None, parts: list[str]) -> bool:
    if not parts:
        return True
    if not isinstance(node, dict):
        return False
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return True
    head, rest = parts[0], parts[1:]
    extra = node.get("additionalProperties") if isinstance(node.get("additionalProperties"), dict) else None
    if head.startswith("[") or (head.isdigit() and node.get("type") == "array"):  # [0] or pydantic's .0
        child = node.get("items") if node.get("type") == "array" else extra
        return _walk(child, rest)
    props = node.get("properties") or {}
    if head in props:
        return _walk(props[head], rest)
    if extra is not None:   # a map key, possibly with dots in it
        return any(_walk(extra, rest[i:]) for i in range(len(rest) + 1))
    return False


def first_field(message: str) -> str | None:
    """The field an operator condition message starts with (``spec.x.y: ...``), or None."""
    match = re.match(r"^((?:spec|metadata|status)(?:\.[A-Za-z0-9_$-]+|\[[^\]]*\])*): ", message)
    return match.group(1) if match else None


