"""Terraform edits of EKS node groups: sizes and instance types (volumes: :mod:`.tfvolumes`).

Located with python-hcl2's parse tree (:mod:`.hcl`), changed by splicing the
original text, so comments, heredocs and spacing outside the edited span survive.
Node groups are found both ways people write them: a raw ``aws_eks_node_group``
(``scaling_config`` block, ``instance_types``) and the terraform-aws-modules ``eks``
module (``eks_managed_node_groups`` / ``self_managed_node_groups`` maps). When a
value comes from ``local.x`` or ``var.x`` we edit where it is defined (the local,
a tfvars file, or the variable's default) and say so in the notes.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Callable

from ..errors import EditError, SourceNotFound, UnreadableFile
from ..models import Change, Finding
from . import hcl
from .hclrefs import Instance, Located, evaluate_string, instances, resolve_value, usages
from .yamledit import splice

log = logging.getLogger(__name__)
Reader = Callable[[str], str]
SIZE_FIELDS = ("desired_size", "min_size", "max_size")
MODULE_MAPS = ("eks_managed_node_groups", "self_managed_node_groups")
EKS_MODULE = "terraform-aws-modules/eks/aws"
CLUSTER_AUTOSCALER_TAG = "k8s.io/cluster-autoscaler/enabled"
_AUTOSCALED = re.compile(r'"?k8s\.io/cluster-autoscaler/enabled"?\s*[=:]\s*"?true\b')
DESIRED_IGNORED = ("the terraform-aws-modules eks module ignores desired_size changes after the node group "
                   "is created (lifecycle ignore_changes on scaling_config[0].desired_size, see "
                   "terraform-aws-modules/terraform-aws-eks#2030); the cluster autoscaler or "
                   "`aws eks update-nodegroup-config` sets the running size")


@dataclass(slots=True)
class TfResult:
    files: dict[str, str | None]
    location: str | None
    notes: list[str] = field(default_factory=list)


class _Parsed(dict):
    """Parsed Terraform files by path; ``errors`` keeps the ones that failed to parse."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, EditError] = {}

    def check(self, found_in: list[str], missing: str) -> None:
        """A broken file next to what we edit (or anywhere, when nothing was found) stops the edit."""
        dirs = {PurePosixPath(p).parent for p in found_in}
        relevant = [e for p, e in self.errors.items() if not found_in or PurePosixPath(p).parent in dirs]
        if relevant:
            prefix = f"{missing}; " if not found_in else ""
            raise EditError(prefix + "Terraform that could not be parsed: " + "; ".join(map(str, relevant)))


def parse_all(tf_files: list[str], read: Reader) -> _Parsed:
    parsed = _Parsed()
    for p in tf_files:
        if p.endswith((".tf", ".tfvars")):
            try:
                parsed[p] = hcl.parse(read(p), p)
            except (EditError, UnreadableFile) as exc:
                log.warning("ignoring unparsable Terraform %s", exc)
                parsed.errors[p] = exc
    return parsed


# --------------------------------------------------------------------------- node groups


@dataclass(slots=True)
class _Group:
    path: str
    fields: dict[str, hcl.Expr]             # field name -> expression where it is written
    insert_into: hcl.Expr | hcl.Block       # where a missing field would be added
    scaling: hcl.Block | None               # raw resource: its scaling_config block
    desired_ignored: str | None             # why a desired_size change would have no effect
    desc: str
    instance: Instance = ()                 # the module calls that instantiate it (values resolve there)


_GENERATED_SUFFIX = re.compile(r"-\d{26}$")   # EKS names from a name_prefix: "<prefix>-<26 digits>"


def _names_of(name: str) -> set[str]:
    """The names a live node group may be written as: itself, and without a generated suffix."""
    return {name, _GENERATED_SUFFIX.sub("", name)}


def _find_groups(files: dict[str, hcl.HclFile], name: str) -> list[_Group]:
    wanted = _names_of(name)
    found: list[_Group] = []
    for path, f in files.items():
        for block in f.blocks:
            if block.type == "resource" and block.labels[:1] == ["aws_eks_node_group"]:
                found += _raw_groups(files, path, f, block, wanted)
            elif block.type == "module":
                found += _module_groups(files, path, block, wanted)
    return found


def _raw_groups(files: dict[str, hcl.HclFile], path: str, f: hcl.HclFile, block: hcl.Block,
                wanted: set[str]) -> list[_Group]:
    """One group per module instance of the resource whose name (evaluated there) is wanted."""
    found = []
    for instance in instances(files, path):
        names = {block.labels[-1], block.labels[-1].replace("_", "-")}
        for attr in ("node_group_name", "node_group_name_prefix"):
            expr = block.attributes.get(attr)
            value = evaluate_string(files, path, expr.value, instance) if expr is not None else None
            if value:
                names = {value}
        if not names & wanted:
            continue
        scaling = block.block("scaling_config")
        fields = {k: a.value for k, a in (scaling.attributes if scaling else {}).items()}
        if "instance_types" in block.attributes:
            fields["instance_types"] = block.attributes["instance_types"].value
        lifecycle = block.block("lifecycle")
        ignored = None
        if lifecycle and "desired_size" in f.text[lifecycle.start:lifecycle.end]:
            ignored = ("this aws_eks_node_group ignores desired_size changes (lifecycle "
                       "ignore_changes); the autoscaler sets the running size")
        elif _AUTOSCALED.search(f.text[block.start:block.end]):
            ignored = (f"the Cluster Autoscaler sets this group's running size (tag {CLUSTER_AUTOSCALER_TAG}): a "
                       "live count that differs from desired_size is not drift, and editing it does not last")
        where = f" (instance {' <- '.join(str(c) for c in instance)})" if instance else ""
        found.append(_Group(path, fields, scaling or block, scaling, ignored,
                            f'resource "aws_eks_node_group" "{block.labels[-1]}" in {path}{where}', instance))
    return found


def _module_groups(files: dict[str, hcl.HclFile], path: str, block: hcl.Block, wanted: set[str]) -> list[_Group]:
    source = block.attributes.get("source")
    src = source.value.value if source and source.value.kind == "string" else ""
    ignored = DESIRED_IGNORED if EKS_MODULE in src or not src.startswith((".", "/")) else None
    found = []
    for map_name in MODULE_MAPS:
        attr = block.attributes.get(map_name)
        if attr is None:
            continue
        expr, through = attr.value, None
        if expr.kind == "for":          # { for k, v in local.groups : k => merge(v, {...}) }
            expr, through = expr.value.collection, expr.value
        located = resolve_value(files, path, expr) if expr.kind == "ref" else Located(path, expr, [])
        if located.expr.kind != "object":
            continue
        for elem in located.expr.value:
            inner = elem.value.elem("name")
            alias = inner.value.value if inner and inner.value.kind == "string" else None
            if wanted & {elem.key, alias} and elem.value.kind == "object":
                fields = {e.key: e.value for e in elem.value.value if _passes(through, e.key)}
                found.append(_Group(located.path, fields, elem.value, None, ignored,
                                    f'module "{block.labels[0]}" {map_name}.{elem.key} in {located.path}'))
    return found


def _passes(through: hcl.ForObject | None, key: str) -> bool:
    """Whether a field of a map element reaches the module unchanged through a for-expression."""
    if through is None:
        return True
    if key in through.overridden:
        return False
    return through.fields is None or key in through.fields


def _parse_types(text: str | None) -> list[str]:
    if text is None:
        return []
    text = text.strip()
    if text.startswith("["):
        return [str(t) for t in json.loads(text)]
    return [t.strip() for t in text.split(",") if t.strip()]


def edit_node_group(tf_files: list[str], read: Reader, finding: Finding) -> TfResult:
    """Apply a node-group finding's size/instance-type changes to Terraform."""
    name = finding.target.name
    files = parse_all(tf_files, read)
    groups = _find_groups(files, name)
    files.check([g.path for g in groups], f"node group {name} not found")
    if not groups:
        raise SourceNotFound(f"node group {name} not found in Terraform (searched {len(files)} .tf files for "
                             "aws_eks_node_group and eks module node group maps)")
    if len(groups) > 1:
        raise SourceNotFound(f"node group {name} is defined in several places: "
                             f"{'; '.join(g.desc for g in groups)}")
    group = groups[0]
    changes = [c for c in finding.changes if c.after is not None]
    unknown = [c.field for c in changes if c.field not in SIZE_FIELDS + ("instance_types",)]
    if unknown:
        raise EditError(f"unsupported node group field(s) {unknown} for {group.desc}")
    notes: list[str] = []
    if group.desired_ignored and any(c.field == "desired_size" for c in changes):
        # The autoscaler owns the live size: desired_size in the file neither takes effect nor
        # has to match the cluster (live count != file is not drift). What takes effect is min_size.
        changes = [c for c in changes if c.field != "desired_size"]
        if not changes:
            raise EditError(f"only desired_size changes for {group.desc}, and {group.desired_ignored}; "
                            f"{_autoscaled_hint(files, group, finding)}")
        notes.append(f"desired_size not edited: {group.desired_ignored}")
    _check_sizes(files, group, changes)
    texts: dict[str, str] = {}
    location = None
    for change in changes:
        path, line, note = _edit_field(files, texts, read, group, change)
        location = location or f"{path}:{line}"
        notes += [note] if note else []
    return TfResult(dict(texts), location, notes)


def _autoscaled_hint(files, group: _Group, finding: Finding) -> str:
    """What to do when only an ignored desired_size would change."""
    after = next((c.after for c in finding.changes if c.field == "desired_size"), None)
    expr = group.fields.get("min_size")
    try:
        located = resolve_value(files, group.path, expr, group.instance) if expr is not None and expr.kind == "ref" \
            else (Located(group.path, expr, []) if expr is not None else None)
    except EditError:
        located = None
    if located is not None and located.expr.kind == "int" and after is not None and located.expr.value <= int(after):
        return (f"nothing in Terraform holds the group above {after} nodes (min_size is {located.expr.value} in "
                f"{located.path}): the autoscaler can remove the nodes once their pods fit elsewhere; check its "
                "scale-down settings")
    return "lower min_size to let the autoscaler remove the nodes"


def _check_sizes(files, group: _Group, changes: list[Change]) -> None:
    """AWS rejects min_size > desired_size > max_size: never propose such a change."""
    sizes: dict[str, int] = {}
    for name in SIZE_FIELDS:
        expr = group.fields.get(name)
        if expr is None:
            continue
        try:
            expr = resolve_value(files, group.path, expr, group.instance).expr if expr.kind == "ref" else expr
        except EditError:
            continue
        if expr.kind == "int":
            sizes[name] = expr.value
    sizes.update({c.field: _int(c) for c in changes if c.field in SIZE_FIELDS})
    pairs = [("min_size", "desired_size"), ("desired_size", "max_size"), ("min_size", "max_size")]
    for a, b in pairs:
        if a in sizes and b in sizes and sizes[a] > sizes[b]:
            raise EditError(f"the change would leave {a} = {sizes[a]} above {b} = {sizes[b]} for {group.desc}; "
                            "AWS rejects that (min_size <= desired_size <= max_size); change them together")


def _edit_field(files, texts: dict[str, str], read: Reader, group: _Group, change: Change):
    new_value: object = _parse_types(change.after) if change.field == "instance_types" else _int(change)
    expr = group.fields.get(change.field)
    if expr is None:
        return _insert_field(files, texts, read, group, change.field, new_value)
    located = resolve_value(files, group.path, expr, group.instance) if expr.kind == "ref" \
        else Located(group.path, expr, [])
    target = located.expr
    _check_before(group, change, target)
    if located.shared_default:
        raise EditError(f"{change.field} of {group.desc} is {located.shared_default}; editing it would change "
                        "the others too. Pass this instance its own value from the module block")
    for used_in, ref in located.refs:
        shared = usages(files, used_in, ref)
        if shared > 1:
            raise EditError(f"{change.field} of {group.desc} comes from {ref} (in {used_in}), which is used in "
                            f"{shared} places; editing it would change the others too. Give this group its own value")
    text = texts.get(located.path, read(located.path))
    new = splice(text, target.start, target.end, hcl.render_value(new_value))
    _self_check(new, located.path, target.start, new_value)
    texts[located.path] = new
    files[located.path] = hcl.parse(new, located.path)
    note = f"{change.field} comes from {' -> '.join(located.via)}; edited it in {located.path}" if located.via else None
    return located.path, hcl.line_of(new, target.start), note


def _int(change: Change) -> int:
    try:
        value = int(str(change.after))
    except ValueError:
        raise EditError(f"{change.field} must be a whole number, got {change.after!r}") from None
    if value < 0:
        raise EditError(f"{change.field} must be >= 0, got {value}")
    return value


def _check_before(group: _Group, change: Change, expr: hcl.Expr) -> None:
    if change.before is None:
        return
    if change.field == "instance_types" and expr.kind == "tuple":
        current = [e.value for e in expr.value]
        if sorted(map(str, current)) != sorted(_parse_types(change.before)):
            raise EditError(f"{group.desc} has instance_types {current} but the cluster runs {change.before}; "
                            "sync the repository first")
    elif expr.kind == "int" and str(expr.value) != str(change.before).strip():
        raise EditError(f"{group.desc} has {change.field} = {expr.value} but the cluster shows {change.before}; "
                        "sync the repository first")
    elif expr.kind not in ("int", "tuple"):
        raise EditError(f"{change.field} of {group.desc} is an expression, not a literal; change it by hand")


def _insert_field(files, texts, read: Reader, group: _Group, field_name: str, value: object):
    holder = group.insert_into
    if isinstance(holder, hcl.Block) and field_name in SIZE_FIELDS and group.scaling is None:
        raise EditError(f"{group.desc} has no scaling_config block; add one by hand")
    text = texts.get(group.path, read(group.path))
    close = text.rfind("}", holder.start, holder.end)
    line_start = text.rfind("\n", 0, close) + 1
    members = list(holder.attributes.values()) if isinstance(holder, hcl.Block) else list(holder.value)
    if not members or "\n" not in text[holder.start:holder.end]:
        raise EditError(f"cannot add {field_name} to {group.desc}: it is written on one line; add it by hand")
    indent = re.match(r"[ \t]*", text[text.rfind("\n", 0, members[-1].start) + 1:]).group(0)
    line = f"{indent}{field_name} = {hcl.render_value(value)}\n"
    new = text[:line_start] + line + text[line_start:]
    _self_check(new, group.path, line_start + len(indent) + len(field_name) + 3, value)
    texts[group.path] = new
    files[group.path] = hcl.parse(new, group.path)
    return group.path, hcl.line_of(new, line_start), f"{field_name} was not set in {group.desc}; added it"


def _self_check(text: str, path: str, at: int, value: object) -> None:
    """The edited file must still parse, and the value at the splice must be the new one."""
    hcl.parse(text, path)
    rendered = hcl.render_value(value)
    if text[at:at + len(rendered)] != rendered:
        raise EditError("self-check failed: the edited value is not where it was written; nothing was written",
                        source=path)
