"""Entry point: turn findings into whole-file edits of a GitOps repository (nothing is written).

    result = plan_edits(repo_root, findings)
    result.edits      # [FileEdit(path, before, after)] for files that change
    result.skipped    # finding id -> why it could not be edited automatically
    result.locations  # finding id -> "path:line" of the value (for the PR body)

Each finding is applied completely or not at all: its changes are staged on the
current texts and only kept when every one of them succeeded and passed its
self-check. Several findings touching one file are applied to one text in sequence.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import bundled
from ..errors import EditError, FinOpsError
from ..models import EditKind, FileEdit, Finding
from . import container_edit, manifests, nodepool, quota, terraform, tfvolumes
from .locate import RepoIndex

log = logging.getLogger(__name__)

__all__ = ["EditResult", "RepoIndex", "plan_edits"]


@dataclass(slots=True)
class EditResult:
    edits: list[FileEdit]            # whole-file before/after, only files that change
    skipped: dict[str, str]          # finding id -> clear reason it could not be edited automatically
    locations: dict[str, str]        # finding id -> "path:line" where the value lives (for the PR body)
    notes: dict[str, list[str]] = field(default_factory=dict)   # finding id -> things a reviewer should know


class _Workspace:
    """Current texts of the files touched so far (None = deleted), on top of the originals."""

    def __init__(self, index: RepoIndex):
        self.index = index
        self.current: dict[str, str | None] = {}
        self.order: list[str] = []

    def read(self, path: str) -> str:
        if path in self.current:
            text = self.current[path]
            if text is None:
                raise EditError("file was deleted by an earlier change in this set", source=path)
            return text
        return self.index.text(path)

    def commit(self, staged: dict[str, str | None]) -> None:
        for path, text in staged.items():
            if path not in self.current:
                self.order.append(path)
            self.current[path] = text

    def file_edits(self) -> list[FileEdit]:
        edits = []
        for path in self.order:
            before = self.index.text(path) if self.index.is_file(path) else None
            after = self.current[path]
            if before != after:
                edits.append(FileEdit(path, before, after))
        return edits


def _order(finding: Finding) -> int:
    """Document removals last, so earlier value edits still find their document numbers."""
    return 1 if finding.edit.kind in (EditKind.EBS_VOLUME, EditKind.PERSISTENT_VOLUME) else 0


def plan_edits(repo_root: Path, findings: list[Finding], *, templates_dir: Path | None = None,
               index: RepoIndex | None = None, allow_shared: bool = False) -> EditResult:
    """Plan the file edits for ``findings`` in the repository at ``repo_root``.

    ``allow_shared`` (the policy's ``spec.gitops.sharedBaseEdits: Allow``) lets a container edit
    change a Kustomize base or component that other overlays build, instead of patching this overlay.
    """
    index = index or RepoIndex(Path(repo_root))
    templates = Path(templates_dir) if templates_dir else bundled.path("terraform_templates")
    ws = _Workspace(index)
    result = EditResult([], {}, {})
    for finding in sorted(findings, key=_order):
        staged: dict[str, str | None] = {}
        reader = lambda p: staged[p] if p in staged and staged[p] is not None else ws.read(p)
        ctx = _Context(index, reader, staged, templates, allow_shared)
        try:
            location, notes = _apply(ctx, finding)
        except FinOpsError as exc:
            result.skipped[finding.id] = str(exc)
            log.info("skipping %s: %s", finding.target, exc)
            continue
        ws.commit(staged)
        if location:
            result.locations[finding.id] = location
        if notes:
            result.notes[finding.id] = notes
    result.edits = ws.file_edits()
    return result


@dataclass(slots=True)
class _Context:
    """What every editor gets: the index, a reader over this finding's staged texts, where to stage."""

    index: RepoIndex
    read: Callable[[str], str]
    staged: dict[str, str | None]
    templates: Path
    allow_shared: bool


def _apply(ctx: _Context, finding: Finding) -> tuple[str | None, list[str]]:
    editor = _EDITORS.get(finding.edit.kind)
    if editor is None:
        raise EditError(f"no editor for edit kind {finding.edit.kind.value}")
    return editor(ctx, finding)


def _staged(ctx: _Context, out) -> tuple[str | None, list[str]]:
    """Stage an editor's files; return its location and notes."""
    ctx.staged.update(out.files)
    return out.location, out.notes


def _edit_node_group(ctx: _Context, finding: Finding) -> tuple[str | None, list[str]]:
    return _staged(ctx, terraform.edit_node_group(ctx.index.tf_files, ctx.read, finding))


def _remove_ebs_volume(ctx: _Context, finding: Finding) -> tuple[str | None, list[str]]:
    return _staged(ctx, tfvolumes.remove_volume(ctx.index.tf_files, ctx.read, finding, ctx.templates))


def _apply_container(ctx: _Context, finding: Finding) -> tuple[str | None, list[str]]:
    return _staged(ctx, container_edit.edit_container(ctx.index, finding, ctx.read, allow_shared=ctx.allow_shared))


def _edit_node_pool(ctx: _Context, finding: Finding) -> tuple[str | None, list[str]]:
    return _staged(ctx, nodepool.edit_node_pool(ctx.index, finding, ctx.read))


def _edit_quota(ctx: _Context, finding: Finding) -> tuple[str | None, list[str]]:
    return _staged(ctx, quota.edit_quota(ctx.index, finding, ctx.read))


def _remove_pv(ctx: _Context, finding: Finding) -> tuple[str | None, list[str]]:
    index, read, staged = ctx.index, ctx.read, ctx.staged
    name = finding.target.name
    defs = index.pvs.get(name, [])
    if not defs:
        raise manifests.SourceNotFound(
            f"PersistentVolume {name} not found in the repository (searched {len(index.yaml_files)} YAML "
            "files); if it was created by a provisioner, delete it with kubectl after review")
    if len(defs) > 1:
        raise manifests.Ambiguous(f"PersistentVolume {name} is defined in several files: "
                                  f"{', '.join(sorted(d.path for d in defs))}")
    defn = defs[0]
    if defn.prefix:
        raise EditError(f"PersistentVolume {name} is an item of a List; remove it by hand", source=defn.path)
    text = read(defn.path)
    line = text.count("\n", 0, max(text.find(f"name: {name}"), 0)) + 1
    staged[defn.path] = manifests.remove_document(text, defn.path, "PersistentVolume", name)
    note = "deleted the file (it held only this PersistentVolume)" if staged[defn.path] is None \
        else "removed the PersistentVolume document"
    return f"{defn.path}:{line}", [note]


# One editor per edit kind; a finding type declares which kinds it emits (Detector.edit_kinds).
_EDITORS = {
    EditKind.CONTAINER_RESOURCES: _apply_container,
    EditKind.NODE_GROUP: _edit_node_group,
    EditKind.EBS_VOLUME: _remove_ebs_volume,
    EditKind.PERSISTENT_VOLUME: _remove_pv,
    EditKind.NODE_POOL: _edit_node_pool,
    EditKind.RESOURCE_QUOTA: _edit_quota,
}
