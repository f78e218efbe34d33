"""`--apply`: write one branch per change set into a local checkout, all of them or none.

The decision, for a person running ``finops scan --apply`` twice: a branch that does not
exist is created; a branch finops wrote for the same change set (its tip carries that
change set's ``Change-Set:`` trailer) is updated, and the output says "updated"; a branch
of that name that holds anyone else's commit is never touched, and the command stops
naming it before any branch moves. Every ref moves in one git transaction
(:meth:`GitRepo.write_branches`), so a failure leaves every branch as it was. The working
tree, the index and HEAD are never touched.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..pipeline import ScanResult


@dataclass
class AppliedBranch:
    branch: str
    commit: str
    files: list[str]
    action: str          # created | updated | unchanged


def apply_branches(repo: Path, result: ScanResult, base: str | None) -> list[AppliedBranch]:
    """Write one branch per change set into a local repository (no push), all or nothing."""
    from ..actuation.git import GitRepo
    from ..actuation.render import render_commit_message
    git = GitRepo(repo)
    if not result.change_sets:
        return []
    base = base or f"refs/heads/{git.current_branch()}"   # the local branch, even when a remote exists
    messages = {cs.id: render_commit_message(cs) for cs in result.change_sets}
    writes = git.write_branches(result.change_sets, base, messages=messages)
    files = {cs.branch: [e.path for e in cs.edits] for cs in result.change_sets}
    return [AppliedBranch(w.branch, w.commit, files[w.branch],
                          "created" if w.previous is None else "unchanged" if w.previous == w.commit else "updated")
            for w in writes]
