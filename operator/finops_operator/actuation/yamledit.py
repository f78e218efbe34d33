"""Surgical edits of YAML text: find a value with ruamel's node positions, splice the text.

Why not ``ruamel.yaml`` round-trip dump? It re-indents mixed sequence styles, drops a
leading ``---`` and wraps long lines at width 80, so a one-value change would move
unrelated lines. Instead we *compose* the text (nodes carry exact start/end marks),
change only the characters of the scalar (or insert/remove whole lines), then re-load
both texts and check that exactly the intended value changed (:func:`verify`).

Everything here is pure: text in, text out; errors are :class:`EditError` naming the
file and line.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterator

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

import yaml as _pyyaml

from .. import safeio
from ..errors import EditError

_DOC_SEPARATOR = re.compile(r"^---(?:[ \t].*)?$", re.MULTILINE)
_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_NULLS = {"", "~", "null", "Null", "NULL"}


@dataclass(slots=True)
class Doc:
    """One YAML document: its composed node tree and its text span in the file."""

    index: int
    node: Node | None
    start: int      # offset of the document's first character (after its '---' line)
    end: int        # offset just past the document (start of the next '---' line or EOF)
    sep: int | None = None   # offset of the '---' line that opens it, if any


def _yaml_error(path: str, exc: Exception) -> EditError:
    problem, line = safeio.yaml_problem(exc)
    return EditError(f"malformed YAML ({problem}); fix the file so `yq . {path}` accepts it",
                     source=path, field=line)


def compose(text: str, path: str) -> list[Doc]:
    """Compose every document of ``text`` with positions; EditError names file and line."""
    try:
        nodes = list(YAML(typ="rt").compose_all(text))
    except (MarkedYAMLError, YAMLError) as exc:
        raise _yaml_error(path, exc) from None
    except RecursionError:
        raise EditError(f"nests deeper than this editor can follow (limit {safeio.MAX_YAML_DEPTH} levels)",
                        source=path) from None
    bounds = _document_bounds(text)
    docs: list[Doc] = []
    for i, node in enumerate(nodes):
        if node is None:
            continue
        pos = node.start_mark.index
        sep, start, end = next(((p, s, e) for p, s, e in bounds if s <= pos < e), (None, 0, len(text)))
        docs.append(Doc(i, node, start, end, sep))
    return docs


def load_data(text: str, path: str) -> list[Any]:
    """Plain Python data of every document (used for indexing and for the self-check).

    Goes through :func:`safeio.load_yaml` (libyaml, ten times faster than pure-Python
    ruamel on a repository walk, with the alias and depth budget); both texts of a
    self-check go through the same loader. A YAML bomb raises UnreadableFile.
    """
    try:
        return safeio.load_yaml(text, path)
    except _pyyaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None


def _document_bounds(text: str) -> list[tuple[int | None, int, int]]:
    """(separator, start, end) spans between ``---`` lines; a separator opens the document after it."""
    cuts = [m.start() for m in _DOC_SEPARATOR.finditer(text)]
    seps: list[int | None] = [None] + list(cuts)
    starts = [0] + [_line_end(text, c) + 1 for c in cuts]
    ends = cuts + [len(text)]
    return [(p, min(s, len(text)), e) for p, s, e in zip(seps, starts, ends)]


# --------------------------------------------------------------------------- navigation


def get(node: Node | None, key: str) -> Node | None:
    """Value node of ``key`` in a mapping node (None when absent or not a mapping)."""
    pair = get_pair(node, key)
    return pair[1] if pair else None


def get_pair(node: Node | None, key: str) -> tuple[ScalarNode, Node] | None:
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return k, v
    return None


def get_path(node: Node | None, keys: list[str]) -> Node | None:
    for key in keys:
        node = get(node, key)
    return node


def scalar(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def items(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def is_null(node: Node | None) -> bool:
    """A plain null scalar (``key:``, ``~``, ``null``)."""
    return isinstance(node, ScalarNode) and node.style is None and node.value in _NULLS


def walk_mappings(node: Node | None, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], MappingNode]]:
    """Every mapping under ``node`` with its key path (sequence items are not followed)."""
    if isinstance(node, MappingNode):
        yield path, node
        for k, v in node.value:
            if isinstance(k, ScalarNode):
                yield from walk_mappings(v, path + (k.value,))


def line_of(text: str, index: int) -> int:
    """1-based line number of a character offset."""
    return text.count("\n", 0, index) + 1


# --------------------------------------------------------------------------- splices


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    """Offset of the newline ending the line that holds ``index`` (or len(text))."""
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl


def _content_line_end(text: str, index: int) -> int:
    """Newline ending the last line of a node that ends at ``index``.

    Block scalars (``|``, ``>``) end *after* their final newline; do not run into the next line.
    """
    if index > 0 and text[index - 1] == "\n":
        return index - 1
    return _line_end(text, index)


def _last_end(node: Node) -> int:
    """End offset of the last character that belongs to ``node`` (block nodes end early/late)."""
    if isinstance(node, ScalarNode):
        return node.end_mark.index
    if node.flow_style:
        return node.end_mark.index
    children: list[Node] = []
    if isinstance(node, MappingNode):
        for k, v in node.value:
            children += [k, v]
    else:
        children = list(node.value)
    return max((_last_end(c) for c in children), default=node.start_mark.index)


def render_scalar(value: str, like: ScalarNode | None) -> str:
    """Text for ``value`` in the quoting style of the scalar it replaces."""
    style = like.style if like is not None else None
    if style == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if _PLAIN_SAFE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_scalar(text: str, node: ScalarNode, value: str) -> str:
    """Replace exactly the characters of one scalar, keeping its quote style."""
    if node.style in ("|", ">"):
        raise EditError(f"value at line {line_of(text, node.start_mark.index)} is a block scalar; "
                        "write it as a plain value to let the operator edit it")
    return splice(text, node.start_mark.index, node.end_mark.index, render_scalar(value, node))


_TRAILING_COMMENT = re.compile(r"([ \t]+)(#|//)")


def splice(text: str, start: int, end: int, new: str) -> str:
    """Replace text[start:end]; a trailing comment on the line keeps its column when it can."""
    rest = text[end:]
    match = _TRAILING_COMMENT.match(rest)
    if match:
        width = max(1, len(match.group(1)) + (end - start) - len(new))
        rest = " " * width + rest[len(match.group(1)):]
    return text[:start] + new + rest


def remove_key(text: str, mapping: MappingNode, key: str) -> str:
    """Remove ``key`` (and its value) from a mapping: whole lines in block style."""
    pair = get_pair(mapping, key)
    if pair is None:
        return text
    knode, vnode = pair
    if mapping.flow_style:
        return _remove_flow_key(text, mapping, knode, vnode)
    start = _line_start(text, knode.start_mark.index)
    if text[start:knode.start_mark.index].strip():
        raise EditError(f"cannot remove '{key}' at line {line_of(text, start)}: it shares its line "
                        "with other content; put it on its own line")
    end = _content_line_end(text, _last_end(vnode))
    return text[:start] + text[min(end + 1, len(text)):]


def _remove_flow_key(text: str, mapping: MappingNode, knode: Node, vnode: Node) -> str:
    pairs = mapping.value
    idx = next(i for i, (k, _) in enumerate(pairs) if k is knode)
    start, end = knode.start_mark.index, _last_end(vnode)
    if idx + 1 < len(pairs):                      # remove "k: v, " up to the next key
        end = pairs[idx + 1][0].start_mark.index
    elif idx > 0:                                 # last: remove ", k: v" back to the previous value
        start = _last_end(pairs[idx - 1][1])
    return text[:start] + text[end:]


def insert_keys(text: str, mapping: MappingNode, keys: list[str], value: str, *, indent_step: int) -> str:
    """Add the nested keys ``keys`` (the last one = ``value``) as the mapping's last entry."""
    rendered = render_scalar(value, None)
    if mapping.flow_style:
        inner = rendered
        for key in reversed(keys[1:]):
            inner = f"{{{key}: {inner}}}"
        entry = f"{keys[0]}: {inner}"
        if mapping.value:
            at = _last_end(mapping.value[-1][1])
            return text[:at] + ", " + entry + text[at:]
        close = text.rfind("}", 0, mapping.end_mark.index)
        return text[:close] + entry + text[close:]
    if not mapping.value:
        raise EditError(f"empty block mapping at line {line_of(text, mapping.start_mark.index)}")
    column = mapping.value[0][0].start_mark.column
    lines = []
    for depth, key in enumerate(keys):
        pad = " " * (column + depth * indent_step)
        lines.append(f"{pad}{key}: {rendered}" if depth == len(keys) - 1 else f"{pad}{key}:")
    at = _content_line_end(text, _last_end(mapping))
    return text[:at] + "\n" + "\n".join(lines) + text[at:]


def insert_under_null(text: str, knode: ScalarNode, vnode: ScalarNode, keys: list[str], value: str,
                      *, indent_step: int) -> str:
    """``resources:`` with an empty value: write the nested keys below it."""
    if vnode.value not in ("",) or vnode.start_mark.index != vnode.end_mark.index:
        # 'resources: null' / '~': replace the null with a flow mapping, still one line
        inner = render_scalar(value, None)
        for key in reversed(keys):
            inner = f"{{{key}: {inner}}}"
        return text[:vnode.start_mark.index] + inner + text[vnode.end_mark.index:]
    column = knode.start_mark.column
    lines = []
    for depth, key in enumerate(keys, start=1):
        pad = " " * (column + depth * indent_step)
        lines.append(f"{pad}{key}: {render_scalar(value, None)}" if depth == len(keys) else f"{pad}{key}:")
    at = _line_end(text, knode.end_mark.index)
    return text[:at] + "\n" + "\n".join(lines) + text[at:]


def indent_step(root: Node | None) -> int:
    """The document's indentation step: key column of a nested block mapping minus its parent's."""
    for _, mapping in walk_mappings(root):
        if mapping.flow_style:
            continue
        for k, v in mapping.value:
            if isinstance(v, MappingNode) and not v.flow_style and v.value:
                step = v.value[0][0].start_mark.column - k.start_mark.column
                if step > 0:
                    return step
    return 2


# --------------------------------------------------------------------------- self-check


def _child(node: Any, key: Any, create: bool) -> Any:
    if isinstance(node, list):
        return node[key]
    if create and node.get(key) is None:
        node[key] = {}
    return node[key]


def set_in(data: Any, path: list[Any], value: Any, *, prune_from: int) -> None:
    """Apply a change to plain data the way the text splice should have: the oracle.

    ``value=None`` removes the key, then removes parents left empty, but never the
    first ``prune_from - 1`` keys of ``path``.
    """
    node = data
    for key in path[:-1]:
        node = _child(node, key, value is not None)
    if value is not None:
        node[path[-1]] = value
        return
    node.pop(path[-1], None)
    for depth in range(len(path) - 1, prune_from - 1, -1):
        parent = data
        for key in path[:depth - 1]:
            parent = parent[key]
        if parent[path[depth - 1]] in ({}, None):
            del parent[path[depth - 1]]
        else:
            break


def verify(before: str, after: str, path: str, doc_index: int, key_path: list[Any],
           value: str | None, *, prune_from: int) -> None:
    """Re-load both texts; everything must be equal except the one intended value.

    Fails loudly (EditError) instead of handing a surprising diff to a reviewer.
    """
    old = load_data(before, path)
    try:
        new = load_data(after, path)
    except EditError as exc:
        raise EditError(f"internal edit produced invalid YAML ({exc.message}); nothing was written",
                        source=path) from None
    expected = copy.deepcopy(old)
    set_in(expected[doc_index], key_path, value, prune_from=prune_from)
    got = _stringify(new)
    if _stringify(expected) != got:
        raise EditError("self-check failed: the edited file differs from the intended change "
                        f"at {'.'.join(map(str, key_path))}; nothing was written", source=path)


def _stringify(data: Any) -> Any:
    """Compare values as text: ``cpu: 1`` and ``cpu: "1"`` carry the same quantity."""
    if isinstance(data, dict):
        return {str(k): _stringify(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_stringify(v) for v in data]
    return None if data is None else str(data)
