"""A small positional view of HCL built from python-hcl2's Lark parse tree.

python-hcl2's writers are lossy (comments and layout change), so we never write
HCL with it. Its Lark parser keeps ``propagate_positions``: every tree node knows
its character offsets in the source text. We turn the tree into blocks, attributes
and expressions that carry ``start``/``end`` offsets; :mod:`.terraform` then splices
the original text, so everything outside the edited span survives byte-for-byte
(comments, heredocs, odd spacing).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import hcl2
from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from ..errors import EditError

_REF = re.compile(r"^(local|var)\.([A-Za-z_][A-Za-z0-9_-]*)$")


@dataclass(slots=True)
class Expr:
    """An expression: kind int|float|string|template|tuple|object|ref|bool|other, with its span."""

    kind: str
    start: int
    end: int
    value: Any = None      # int/float/str; list[Expr] (tuple); list[ObjElem] (object); "local.x" (ref);
                           # template: list of str and ref Exprs ("${var.env}-general")

    def elem(self, key: str) -> "ObjElem | None":
        if self.kind != "object":
            return None
        return next((e for e in self.value if e.key == key), None)


@dataclass(slots=True)
class ObjElem:
    key: str
    value: Expr
    start: int
    end: int


@dataclass(slots=True)
class Attribute:
    name: str
    value: Expr
    start: int
    end: int


@dataclass(slots=True)
class Block:
    type: str
    labels: list[str]
    start: int
    end: int
    body_start: int        # offset just after '{'
    attributes: dict[str, Attribute] = field(default_factory=dict)
    blocks: list["Block"] = field(default_factory=list)

    def block(self, type_: str) -> "Block | None":
        return next((b for b in self.blocks if b.type == type_), None)


@dataclass(slots=True)
class HclFile:
    path: str
    text: str
    blocks: list[Block]
    attributes: dict[str, Attribute]     # top level (tfvars files)


def parse(text: str, path: str) -> HclFile:
    """Parse HCL text; malformed input raises EditError naming the file and line."""
    try:
        tree = hcl2.parses_to_tree(text)
    except UnexpectedInput as exc:
        raise EditError(f"malformed HCL near column {exc.column} (check braces, quotes and '='); "
                        "`terraform validate` shows the same place", source=path, field=f"line {exc.line}") from None
    except LarkError as exc:
        raise EditError(f"malformed HCL: {str(exc).splitlines()[0]}", source=path) from None
    except RecursionError:
        raise EditError("nests too deeply to parse; simplify the expression", source=path) from None
    try:
        attributes, blocks = _body(tree.children[0])
    except RecursionError:
        raise EditError("nests too deeply to parse; simplify the expression", source=path) from None
    return HclFile(path, text, blocks, attributes)


def _pos(node: Tree | Token) -> tuple[int, int]:
    if isinstance(node, Token):
        return node.start_pos, node.end_pos
    return node.meta.start_pos, node.meta.end_pos


def _body(body: Tree) -> tuple[dict[str, Attribute], list[Block]]:
    attributes: dict[str, Attribute] = {}
    blocks: list[Block] = []
    for child in body.children:
        if not isinstance(child, Tree):
            continue
        if child.data == "attribute":
            name = _name(child.children[0])
            start, end = _pos(child)
            attributes[name] = Attribute(name, _expr(child.children[-1]), start, end)
        elif child.data == "block":
            blocks.append(_block(child))
    return attributes, blocks


def _block(tree: Tree) -> Block:
    type_ = _name(tree.children[0])
    labels: list[str] = []
    body_start = 0
    inner: Tree | None = None
    for child in tree.children[1:]:
        if isinstance(child, Token) and child.type == "LBRACE":
            body_start = child.end_pos
        elif isinstance(child, Tree) and child.data == "body":
            inner = child
        elif isinstance(child, Tree) and child.data in ("string", "identifier"):
            labels.append(_string(child) if child.data == "string" else _name(child))
    start, end = _pos(tree)
    block = Block(type_, labels, start, end, body_start)
    if inner is not None:
        block.attributes, block.blocks = _body(inner)
    return block


def _name(tree: Tree | Token) -> str:
    if isinstance(tree, Token):
        return str(tree)
    return "".join(str(t) for t in tree.scan_values(lambda v: isinstance(v, Token)))


def _string(tree: Tree) -> str | None:
    """A quoted string without interpolation, else None."""
    parts = [c for c in tree.children if isinstance(c, Tree) and c.data == "string_part"]
    text = []
    for part in parts:
        token = part.children[0]
        if not isinstance(token, Token) or token.type != "STRING_CHARS":
            return None
        text.append(str(token))
    return "".join(text)


def _template(tree: Tree) -> list[Any] | None:
    """A string whose interpolations are all plain ``var.x`` / ``local.x`` references, else None."""
    out: list[Any] = []
    for part in (c for c in tree.children if isinstance(c, Tree) and c.data == "string_part"):
        token = part.children[0]
        if isinstance(token, Token) and token.type == "STRING_CHARS":
            out.append(str(token))
            continue
        if not (isinstance(token, Tree) and token.data == "interpolation"):
            return None
        inner = [c for c in token.children if isinstance(c, Tree)]
        ref = _expr(inner[0]) if len(inner) == 1 else None
        if ref is None or ref.kind != "ref":
            return None
        out.append(ref)
    return out


def _unwrap(tree: Tree | Token) -> Tree | Token:
    while isinstance(tree, Tree) and tree.data == "expr_term" and len(tree.children) == 1:
        tree = tree.children[0]
    return tree


def _expr(node: Tree | Token) -> Expr:
    start, end = _pos(node)
    inner = _unwrap(node)
    kind = inner.data if isinstance(inner, Tree) else "token"
    if kind == "int_lit":
        return Expr("int", start, end, int(str(inner.children[0])))
    if kind == "float_lit":
        return Expr("float", start, end, float(str(inner.children[0])))
    if kind == "string":
        value = _string(inner)
        if value is not None:
            return Expr("string", start, end, value)
        parts = _template(inner)
        return Expr("template", start, end, parts) if parts is not None else Expr("other", start, end, None)
    if kind == "literal_value":
        return Expr("bool", start, end, str(inner.children[0]))
    if kind == "tuple":
        items = [_expr(c) for c in inner.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]
        return Expr("tuple", start, end, items)
    if kind == "object":
        return Expr("object", start, end, [_elem(c) for c in inner.children
                                           if isinstance(c, Tree) and c.data == "object_elem"])
    if kind in ("get_attr_expr_term", "identifier"):
        text = _name(inner)
        if _REF.match(text):
            return Expr("ref", start, end, text)
    if kind == "for_object_expr":
        value = _for_object(inner)
        if value is not None:
            return Expr("for", start, end, value)
    return Expr("other", start, end, None)


@dataclass(slots=True)
class ForObject:
    """``{ for k, v in <collection> : k => <body> }`` where each element's fields pass through.

    ``fields`` names the element fields the body passes through unchanged: ``None``
    for all of them (``v`` or ``merge(v, {...})``, minus ``overridden``), else the set
    of keys written as ``key = v.key``.
    """

    collection: Expr
    fields: set[str] | None
    overridden: set[str]


def _for_object(tree: Tree) -> ForObject | None:
    parts = [c for c in tree.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]
    if len(parts) != 3 or parts[0].data != "for_intro":
        return None
    intro = [c for c in parts[0].children if isinstance(c, Tree)]
    names = [_name(c) for c in intro if c.data == "identifier"]
    collection = _expr(intro[-1])
    if len(names) != 2 or collection.kind != "ref" or _name(_unwrap(parts[1])) != names[0]:
        return None
    value_var, body = names[1], _unwrap(parts[2])
    if isinstance(body, Tree) and body.data == "identifier" and _name(body) == value_var:
        return ForObject(collection, None, set())
    if isinstance(body, Tree) and body.data == "function_call" and _name(body.children[0]) == "merge":
        args = [_unwrap(a) for c in body.children if isinstance(c, Tree) and c.data == "arguments"
                for a in c.children if isinstance(a, Tree)]
        if args and isinstance(args[0], Tree) and args[0].data == "identifier" and _name(args[0]) == value_var:
            overridden = {e.key for a in args[1:] for e in (_expr(a).value or []) if _expr(a).kind == "object"}
            return ForObject(collection, None, overridden)
        return None
    if isinstance(body, Tree) and body.data == "object":
        fields = {e.key for e in _expr(body).value
                  if e.value.kind == "other" and _name(_unwrap(_elem_tree(body, e.key))) == f"{value_var}.{e.key}"}
        return ForObject(collection, fields, set())
    return None


def _elem_tree(obj: Tree, key: str) -> Tree:
    for child in obj.children:
        if isinstance(child, Tree) and child.data == "object_elem" and _elem(child).key == key:
            return child.children[-1]
    raise KeyError(key)


def _elem(tree: Tree) -> ObjElem:
    key_tree = _unwrap(tree.children[0].children[0]) if tree.children[0].children else tree.children[0]
    if isinstance(key_tree, Tree) and key_tree.data == "string":
        key = _string(key_tree) or _name(key_tree)
    else:
        key = _name(key_tree)
    start, end = _pos(tree)
    return ObjElem(key, _expr(tree.children[-1]), start, end)


def line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def render_value(value: Any) -> str:
    """HCL text for an int, a string, or a list of strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
