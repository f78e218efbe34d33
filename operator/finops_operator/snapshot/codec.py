"""The ``meta`` JSON of a snapshot: models dataclasses to JSON and back, every field checked and named."""
from __future__ import annotations

import dataclasses
import functools
import sys
import types
import typing
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable

import numpy as np

from .. import models, safeio
from ..models import ClusterState, ContainerKey, Window, WorkloadRef
from .model import FORMAT, MAX_NUMBER, Snapshot, _fail


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value



def _decode(tp: Any, value: Any, path: str, source: str) -> Any:
    """Rebuild ``tp`` (a models dataclass or a typing form of one) from JSON."""
    if tp is Any:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _decode(next(a for a in args if a is not type(None)), value, path, source)
    if origin is list:
        if not isinstance(value, list):
            _fail(source, path, f"expected a list, got {type(value).__name__}")
        return [_decode(args[0], v, f"{path}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _fail(source, path, f"expected a mapping, got {type(value).__name__}")
        return {_key(args[0], k, path, source): _decode(args[1], v, f"{path}.{k}", source) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, path, source)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            _fail(source, path, f"unknown value {value!r}; use one of {[e.value for e in tp]}")
    if tp is datetime:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            _fail(source, path, f"{value!r} is not an ISO 8601 time")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(_number(value, path, source))
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return _number(value, path, source)
    if isinstance(tp, type) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    _fail(source, path, f"expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _key(tp: Any, key: str, path: str, source: str) -> int | str:
    """A mapping key from JSON (always text): an integer where the model says so (e.g. percentiles)."""
    if tp is not int:
        return str(key)
    try:
        return int(key)
    except ValueError:
        _fail(source, f"{path}.{key}", f"key {key!r} is not an integer")


def _number(value: int | float, path: str, source: str) -> int | float:
    if not 0 <= value <= MAX_NUMBER:    # NaN fails too
        text = repr(value) if len(repr(value)) < 24 else f"{repr(value)[:20]}... ({len(repr(value))} digits)"
        _fail(source, path, f"{text} is not a number between 0 and {MAX_NUMBER:.0e}; re-create the snapshot")
    return value


def _decode_dataclass(tp: type, value: Any, path: str, source: str) -> Any:
    if not isinstance(value, dict):
        _fail(source, path, f"expected a mapping, got {type(value).__name__}")
    kwargs = {}
    for name, hint, required in _plan(tp):
        if name in value:
            kwargs[name] = _decode(hint, value[name], f"{path}.{name}", source)
        elif required:
            _fail(source, f"{path}.{name}", "missing field; re-create the snapshot")
    return tp(**kwargs)


@functools.cache
def _plan(tp: type) -> tuple[tuple[str, Any, bool], ...]:
    """(field, type hint, required) for a models dataclass, resolved once."""
    hints = typing.get_type_hints(tp, localns=vars(models))    # its module, plus the package for cross-module names
    return tuple((f.name, hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
                 for f in dataclasses.fields(tp))


class _Bad(Exception):
    """Raised by the fast decoders; the slow :func:`_decode` then finds and names the field."""


@functools.cache
def _fast(tp: Any) -> Callable[[Any], Any]:
    """A compiled decoder for ``tp`` without path bookkeeping (the common, valid case)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return lambda v: v
    if origin in (typing.Union, types.UnionType):
        inner = _fast(next(a for a in args if a is not type(None)))
        return lambda v: None if v is None else inner(v)
    if origin is list:
        item = _fast(args[0])
        return lambda v: [item(x) for x in v] if type(v) is list else _raise()
    if origin is dict:
        item, key = _fast(args[1]), (int if args[0] is int else str)
        return lambda v: {key(k): item(x) for k, x in v.items()} if type(v) is dict else _raise()
    if dataclasses.is_dataclass(tp):
        plan = [(name, _fast(hint), required) for name, hint, required in _plan(tp)]

        def build(v: Any) -> Any:
            if type(v) is not dict:
                _raise()
            kwargs = {}
            for name, decode, required in plan:
                if name in v:
                    kwargs[name] = decode(v[name])
                elif required:
                    _raise()
            return tp(**kwargs)
        return build
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if tp is datetime:
        return lambda v: _aware(datetime.fromisoformat(v)) if type(v) is str else _raise()
    if tp is float:
        return lambda v: float(v) if type(v) in (int, float) and 0 <= v <= MAX_NUMBER else _raise()
    if tp is int:
        return lambda v: v if type(v) is int and 0 <= v <= MAX_NUMBER else _raise()
    if tp is str:     # one object per distinct text: node names, namespaces and labels repeat on every pod
        return lambda v: sys.intern(v) if type(v) is str else _raise()
    return lambda v: v if type(v) is tp else _raise()


def _raise() -> typing.NoReturn:
    raise _Bad()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _decode_list(tp: type, value: Any, path: str, source: str) -> list[Any]:
    """Decode a list of ``tp`` quickly; on any problem, redo it slowly to name the field."""
    try:
        return _fast(list[tp])(value)
    except (_Bad, ValueError, TypeError, AttributeError):
        return _decode(list[tp], value, path, source)



def encode_meta(snapshot: Snapshot) -> dict[str, Any]:
    """The ``meta`` JSON document of a snapshot."""
    state = snapshot.state
    return {
        "format": FORMAT, "cluster": state.cluster, "region": state.region,
        "window": {"start": state.window.start.isoformat(), "end": state.window.end.isoformat(),
                   "stepSeconds": state.window.step_seconds},
        "workloads": _encode(state.workloads), "pods": _encode(state.pods), "nodes": _encode(state.nodes),
        "pdbs": _encode(state.pdbs), "volumes": _encode(state.volumes),
        "nodeGroups": _encode(state.node_groups), "nodePools": _encode(state.node_pools),
        "containers": [{"workload": {"kind": k.workload.kind, "namespace": k.workload.namespace,
                                     "name": k.workload.name}, "container": k.container} for k in snapshot.keys],
    }


def decode_meta(meta: Any, source: str) -> tuple[ClusterState, list[ContainerKey]]:
    """Inventory and row keys from a ``meta`` document; errors name the field."""
    if not isinstance(meta, dict):
        _fail(source, "meta", "expected a JSON object")
    if meta.get("format") != FORMAT:
        _fail(source, "meta.format", f"format {meta.get('format')!r} is not supported; this version reads "
              f"{FORMAT!r} (re-create the snapshot with this version)")
    for name in ("cluster", "region", "window", "workloads", "containers"):
        if name not in meta:
            _fail(source, f"meta.{name}", "missing field; re-create the snapshot")
    window = meta["window"]
    if not isinstance(window, dict) or any(k not in window for k in ("start", "end", "stepSeconds")):
        _fail(source, "meta.window", "needs start, end and stepSeconds")
    step = _decode(int, window["stepSeconds"], "meta.window.stepSeconds", source)
    if step <= 0:
        _fail(source, "meta.window.stepSeconds", f"must be > 0, got {step}")
    state = ClusterState(
        _decode(str, meta["cluster"], "meta.cluster", source), _decode(str, meta["region"], "meta.region", source),
        Window(_decode(datetime, window["start"], "meta.window.start", source),
               _decode(datetime, window["end"], "meta.window.end", source), step),
        **{name: _decode_list(tp, meta.get(name, []), f"meta.{name}", source)
           for name, tp in (("workloads", models.Workload), ("pods", models.Pod), ("nodes", models.Node),
                            ("pdbs", models.PDB), ("volumes", models.Volume))},
        node_groups=_decode(list[models.NodeGroup], meta.get("nodeGroups", []), "meta.nodeGroups", source),
        node_pools=_decode(list[models.NodePool], meta.get("nodePools", []), "meta.nodePools", source))
    _check_hints(state, source)
    keys = [ContainerKey(_decode(WorkloadRef, c.get("workload") if isinstance(c, dict) else None,
                                 f"meta.containers[{i}].workload", source),
                         _decode(str, c.get("container"), f"meta.containers[{i}].container", source))
            for i, c in enumerate(_decode(list[dict[str, Any]], meta["containers"], "meta.containers", source))]
    return state, keys


def _check_hints(state: ClusterState, source: str) -> None:
    """A ``finops.dev/source`` hint must name a path inside the repository (no ``..``, not absolute)."""
    key = safeio.SOURCE_HINT_KEY
    places = [(f"meta.workloads[{i}].annotations", w.annotations) for i, w in enumerate(state.workloads)]
    places += [(f"meta.volumes[{i}].tags", v.tags) for i, v in enumerate(state.volumes)]
    for where, mapping in places:
        hint = mapping.get(key)
        problem = safeio.split_source_hint(hint)[2] if hint else None
        if problem:
            _fail(source, f"{where}[{key!r}]", f"source hint {hint[:200]!r}: the path {problem}")


# --------------------------------------------------------------------------- checks

