"""Terraform edits that remove an unused ``aws_ebs_volume``, after a final snapshot when asked.

Located with python-hcl2's parse tree (:mod:`.hcl`), changed by cutting the
block's text (and the comment above it) out of the original, so the rest of the
file survives byte for byte. The snapshot block comes from the bundled
``ebs_snapshot.tf.j2`` template.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import jinja2

from .. import safeio
from ..errors import EditError, MissingFile, SourceNotFound
from ..models import Finding
from . import hcl
from .hclrefs import usages
from .terraform import Reader, TfResult, parse_all

SNAPSHOT_FILE = "finops_snapshots.tf"
SNAPSHOT_HEADER = ("# Final EBS snapshots taken before finops-operator removed unused volumes.\n"
                   "# Each block says how to apply it ahead of the volume's deletion.\n")


def _volume_matches(text: str, block: hcl.Block, volume_id: str, name_tag: str | None) -> bool:
    span = text[block.start:block.end]
    if re.search(r'"?finops\.dev/volume-id"?\s*[=:]\s*"' + re.escape(volume_id) + '"', span):
        return True
    if name_tag and re.search(r'\bName"?\s*[=:]\s*"' + re.escape(name_tag) + '"', span):
        return True
    label = block.labels[-1]
    return label in (volume_id, (name_tag or "").replace("-", "_"), name_tag)


def _removal_span(text: str, block: hcl.Block) -> tuple[int, int]:
    """The block's lines plus the comment lines directly above it."""
    start = text.rfind("\n", 0, block.start) + 1
    while start > 0:
        prev = text.rfind("\n", 0, start - 1) + 1
        line = text[prev:start].strip()
        if line.startswith(("#", "//", "/*", "*")) or line.endswith("*/"):
            start = prev
        else:
            break
    end = text.find("\n", block.end - 1)
    end = len(text) if end < 0 else end + 1
    before_blank = start == 0 or text[text.rfind("\n", 0, start - 1) + 1:start].strip() == ""
    if before_blank and text[end:end + 1] == "\n":
        end += 1
    elif before_blank and end >= len(text) and start > 0:   # last block: drop the blank line above it
        start = text.rfind("\n", 0, start - 1) + 1
    return start, end


def remove_volume(tf_files: list[str], read: Reader, finding: Finding, templates: Path) -> TfResult:
    """Remove an ``aws_ebs_volume`` (and its comment), after a snapshot block when asked."""
    volume_id = finding.target.name
    name_tag = finding.labels.get("Name")
    raw_hint = finding.edit.source_hint or ""
    hint, _, problem = safeio.split_source_hint(raw_hint)
    if problem and raw_hint:
        raise SourceNotFound(f"source hint {raw_hint!r} of {volume_id}: the path {problem}; "
                             "fix the volume's finops.dev/source tag")
    if hint != ".":   # the volume's finops.dev/source tag names its file or directory
        tf_files = [p for p in tf_files if p == hint or p.startswith(hint.rstrip("/") + "/")
                    or PurePosixPath(p).parent == PurePosixPath(hint).parent]
    files = parse_all(tf_files, read)
    hits = [(p, b) for p, f in files.items() for b in f.blocks
            if b.type == "resource" and b.labels[:1] == ["aws_ebs_volume"]
            and _volume_matches(f.text, b, volume_id, name_tag)]
    what = f"EBS volume {volume_id}" + (f" (Name {name_tag})" if name_tag else "")
    files.check([p for p, _ in hits], f"{what} not found")
    if not hits:
        raise SourceNotFound(f"{what} not found in Terraform (searched {len(files)} .tf files for aws_ebs_volume "
                             "by Name tag, finops.dev/volume-id tag and resource name); if it was created "
                             "outside Terraform, delete it in the AWS console after review")
    if len(hits) > 1:
        raise SourceNotFound(f"{what} matches several blocks: "
                             f"{', '.join(f'{p}:{hcl.line_of(files[p].text, b.start)}' for p, b in hits)}")
    path, block = hits[0]
    text = files[path].text
    label = block.labels[-1]
    if {"count", "for_each"} & set(block.attributes):
        raise EditError(f'aws_ebs_volume "{label}" uses count/for_each; remove the one instance by hand',
                        source=path)
    start, end = _removal_span(text, block)
    refs = usages(files, path, f"aws_ebs_volume.{label}", skip=(path, start, end))
    if refs:
        raise EditError(f'aws_ebs_volume "{label}" is referenced elsewhere ({refs} places, e.g. an '
                        "aws_volume_attachment); remove those references first", source=path)
    notes = [f'removed resource "aws_ebs_volume" "{label}" from {path}']
    new = text[:start] + text[end:]
    check = hcl.parse(new, path)
    if any(b.labels[-1:] == [label] and b.labels[:1] == ["aws_ebs_volume"] for b in check.blocks):
        raise EditError("self-check failed: the volume block is still there; nothing was written", source=path)
    out = TfResult({path: new}, f"{path}:{hcl.line_of(text, block.start)}", notes)
    if finding.edit.snapshot_before_delete:
        snap_path = str(PurePosixPath(path).parent / SNAPSHOT_FILE)
        out.files[snap_path] = _append_snapshot(read, snap_path, _render_snapshot(templates, finding, label, name_tag))
        notes.append(f"added aws_ebs_snapshot.{label}_final in {snap_path}: run `terraform apply "
                     f"-target=aws_ebs_snapshot.{label}_final` before the full apply, so the snapshot "
                     "exists before the volume is deleted")
    return out


def _append_snapshot(read: Reader, path: str, block: str) -> str:
    """Add a rendered snapshot block to the snapshots file (created on first use)."""
    try:
        current = read(path)
    except (MissingFile, EditError):   # not there yet, or deleted by an earlier change in this set
        current = SNAPSHOT_HEADER
    new = current.rstrip("\n") + "\n\n" + block.rstrip("\n") + "\n"
    hcl.parse(new, path)
    return new


def _render_snapshot(templates: Path, finding: Finding, label: str, name_tag: str | None) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    try:
        template = env.get_template("ebs_snapshot.tf.j2")
    except jinja2.TemplateNotFound:
        raise EditError("template ebs_snapshot.tf.j2 is missing", source=str(templates)) from None
    return template.render(volume_id=finding.target.name, resource_name=f"{label}_final",
                           volume_resource=label, name=name_tag or label,
                           size_gib=finding.edit.size_gib, title=finding.title)
