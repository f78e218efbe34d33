"""Follow ``local.x`` / ``var.x`` to the place a Terraform value is written, through module calls.

Terraform looks values up within one module directory: locals blocks in any .tf file.
Variables of a *child* module come from the ``module`` block that calls it (an input
the caller passes, evaluated in the caller's directory), else the variable's
``default``: tfvars files never reach a child module. Variables of a *root* module
(a directory no module block in the repository calls) come from ``terraform.tfvars``
then ``*.auto.tfvars`` (later wins), else the variable's ``default``. A var set only
by an explicit ``-var-file`` is edited when exactly one such file sets it; otherwise
we stop and say why.

An *instance* of a module directory is the chain of module calls from it up to a
root (:func:`instances`); values are resolved per instance, so a default that every
caller overrides is never what gets edited.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..errors import EditError
from . import hcl

_MAX_DEPTH = 5


@dataclass(frozen=True, slots=True)
class ModuleCall:
    """A ``module "<name>"`` block whose local ``source`` is a directory of the repository."""

    path: str                       # the file holding the block
    name: str
    inputs: dict[str, hcl.Expr]     # attributes of the block (source, count, ... included)

    def __str__(self) -> str:
        return f'module "{self.name}" in {self.path}'


Instance = tuple[ModuleCall, ...]   # innermost call first; () = the directory is a root module


@dataclass(slots=True)
class Located:
    path: str
    expr: hcl.Expr
    via: list[str] = field(default_factory=list)   # e.g. ["local.general_min (locals in main.tf)"]
    refs: list[tuple[str, str]] = field(default_factory=list)   # (file using it, "var.x"): each hop followed
    shared_default: str | None = None   # the value is a child module's default used by several instances
    instance: Instance = ()             # the module instance the value was found in


def module_dir(path: str) -> PurePosixPath:
    return PurePosixPath(path).parent


def _source_dir(call_path: str, source: str) -> PurePosixPath | None:
    if not source.startswith(("./", "../")):
        return None                                   # registry or git module: not in this repository
    parts: list[str] = []
    for part in (module_dir(call_path) / source).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def callers(files: dict[str, hcl.HclFile], directory: PurePosixPath) -> list[ModuleCall]:
    """Module blocks in the repository whose local source is ``directory``."""
    found = []
    for p, f in sorted(files.items()):
        for block in f.blocks:
            if block.type != "module" or not block.labels:
                continue
            source = block.attributes.get("source")
            if source and source.value.kind == "string" and _source_dir(p, source.value.value) == directory:
                found.append(ModuleCall(p, block.labels[0], {k: a.value for k, a in block.attributes.items()}))
    return found


def instances(files: dict[str, hcl.HclFile], path: str) -> list[Instance]:
    """Every chain of module calls that instantiates the directory of ``path`` (``[()]`` for a root)."""
    def walk(directory: PurePosixPath, depth: int) -> list[Instance]:
        calls = callers(files, directory)
        if not calls or depth >= _MAX_DEPTH:
            return [()]
        return [(call,) + outer for call in calls for outer in walk(module_dir(call.path), depth + 1)]
    return walk(module_dir(path), 0)


def evaluate_string(files: dict[str, hcl.HclFile], path: str, expr: hcl.Expr, instance: Instance = ()) -> str | None:
    """The string an expression evaluates to (literal, reference or simple template), else None."""
    if expr.kind == "template":
        parts = []
        for part in expr.value:
            value = part if isinstance(part, str) else evaluate_string(files, path, part, instance)
            if value is None:
                return None
            parts.append(value)
        return "".join(parts)
    if expr.kind == "ref":
        try:
            located = resolve_value(files, path, expr, instance)
        except EditError:
            return None
        return evaluate_string(files, located.path, located.expr, located.instance)
    return str(expr.value) if expr.kind in ("string", "int") else None


def same_dir(files: dict[str, hcl.HclFile], path: str) -> list[tuple[str, hcl.HclFile]]:
    parent = PurePosixPath(path).parent
    return [(p, f) for p, f in sorted(files.items()) if PurePosixPath(p).parent == parent]


def resolve_value(files: dict[str, hcl.HclFile], path: str, expr: hcl.Expr, instance: Instance = ()) -> Located:
    """Follow references until a literal (or a non-reference expression) is reached, in ``instance``."""
    via: list[str] = []
    refs: list[tuple[str, str]] = []
    shared = None
    cur_path, cur = path, expr
    for _ in range(_MAX_DEPTH):
        if cur.kind != "ref":
            return Located(cur_path, cur, via, refs, shared, instance)
        kind, name = cur.value.split(".", 1)
        refs.append((cur_path, cur.value))
        if kind == "local":
            cur_path, cur, how = _local(files, cur_path, name)
        elif instance:
            cur_path, cur, how, instance, shared = _input(files, cur_path, name, instance)
        else:
            cur_path, cur, how = _variable(files, cur_path, name)
        via.append(f"{kind}.{name} ({how})")
    raise EditError(f"{expr.value}: more than {_MAX_DEPTH} levels of references; change it by hand", source=path)


def _input(files, path: str, name: str, instance: Instance):
    """var.<name> of a child module instance: the caller's input, else the child's default."""
    call = instance[0]
    if name in call.inputs:
        return call.path, call.inputs[name], f"passed by {call}", instance[1:], None
    p, default, how = _declared_default(files, path, name)
    count = len(instances(files, path))
    shared = f"the default of var.{name} in {p}, used by {count} module instances" if count > 1 else None
    return p, default, f"{how}; {call} does not pass it", instance, shared


def _declared_default(files, path: str, name: str) -> tuple[str, hcl.Expr, str]:
    for p, f in same_dir(files, path):
        for block in f.blocks:
            if block.type == "variable" and block.labels == [name]:
                default = block.attributes.get("default")
                if default is None:
                    raise EditError(f"var.{name} has no default and its caller does not pass it", source=p)
                return p, default.value, f"default in {p}"
    raise EditError(f'variable "{name}" is not declared next to {path}', source=path)


def _local(files, path: str, name: str) -> tuple[str, hcl.Expr, str]:
    for p, f in same_dir(files, path):
        for block in f.blocks:
            if block.type == "locals" and name in block.attributes:
                return p, block.attributes[name].value, f"locals in {p}"
    raise EditError(f"local.{name} is not defined in any locals block next to {path}", source=path)


def _variable(files, path: str, name: str) -> tuple[str, hcl.Expr, str]:
    siblings = same_dir(files, path)
    tfvars = [(p, f) for p, f in siblings if p.endswith(".tfvars") and name in f.attributes]
    auto = [(p, f) for p, f in tfvars
            if PurePosixPath(p).name == "terraform.tfvars" or p.endswith(".auto.tfvars")]
    auto.sort(key=lambda pf: (PurePosixPath(pf[0]).name != "terraform.tfvars", pf[0]))
    if auto:
        p, f = auto[-1]
        return p, f.attributes[name].value, f"set in {p}"
    if len(tfvars) == 1:
        p, f = tfvars[0]
        return p, f.attributes[name].value, f"set in {p}, passed with -var-file"
    if len(tfvars) > 1:
        raise EditError(f"var.{name} is set in several tfvars files ({', '.join(p for p, _ in tfvars)}); "
                        "change the one your pipeline uses by hand", source=path)
    for p, f in siblings:
        for block in f.blocks:
            if block.type == "variable" and block.labels == [name]:
                default = block.attributes.get("default")
                if default is None:
                    raise EditError(f"var.{name} has no default and no tfvars file next to {path} sets it; "
                                    "it is passed at apply time (-var or TF_VAR_" + name + "), change it there",
                                    source=p)
                return p, default.value, f"default in {p}"
    raise EditError(f'variable "{name}" is not declared next to {path}', source=path)


def usages(files: dict[str, hcl.HclFile], path: str, ref: str,
           skip: tuple[str, int, int] | None = None) -> int:
    """How often ``ref`` (``local.x``, ``var.x``, ``aws_ebs_volume.y``) is used in the module directory."""
    token = ref.split(" ", 1)[0]
    pattern = re.compile(r"(?<![\w.])" + re.escape(token) + r"(?![\w-])")
    count = 0
    for p, f in same_dir(files, path):
        if not p.endswith(".tf"):
            continue
        for m in pattern.finditer(f.text):
            if skip and skip[0] == p and skip[1] <= m.start() < skip[2]:
                continue
            count += 1
    return count
