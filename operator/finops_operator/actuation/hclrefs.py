"""Follow ``local.x`` / ``var.x`` to the place a Terraform value is written.

Terraform looks values up within one module directory: locals blocks in any .tf file,
variables from ``terraform.tfvars`` then ``*.auto.tfvars`` (later wins), else the
variable's ``default``. A var set only by an explicit ``-var-file`` is edited when
exactly one such file sets it; otherwise we stop and say why.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..errors import EditError
from . import hcl

_MAX_DEPTH = 5


@dataclass(slots=True)
class Located:
    path: str
    expr: hcl.Expr
    via: list[str] = field(default_factory=list)   # e.g. ["local.general_min (locals in main.tf)"]


def same_dir(files: dict[str, hcl.HclFile], path: str) -> list[tuple[str, hcl.HclFile]]:
    parent = PurePosixPath(path).parent
    return [(p, f) for p, f in sorted(files.items()) if PurePosixPath(p).parent == parent]


def resolve_value(files: dict[str, hcl.HclFile], path: str, expr: hcl.Expr) -> Located:
    """Follow references until a literal (or a non-reference expression) is reached."""
    via: list[str] = []
    cur_path, cur = path, expr
    for _ in range(_MAX_DEPTH):
        if cur.kind != "ref":
            return Located(cur_path, cur, via)
        kind, name = cur.value.split(".", 1)
        if kind == "local":
            cur_path, cur, how = _local(files, path, name)
        else:
            cur_path, cur, how = _variable(files, path, name)
        via.append(f"{kind}.{name} ({how})")
    raise EditError(f"{expr.value}: more than {_MAX_DEPTH} levels of references; change it by hand", source=path)


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
