"""Where change sets go: the Provider protocol, the PR reference, and the plain ``git`` provider.

A provider turns a planned :class:`ChangeSet` into something a human reviews:
a GitHub pull request (``github.py``) or, for GitLab/Gitea/plain git users
without a PR API here, a pushed branch (:class:`GitProvider`). The control
loop only needs three calls: ``publish`` (idempotent), ``status`` (lifecycle:
open / merged with its time / closed) and ``open_count`` (for the open-PR
guardrail).

The hidden marker ``<!-- finops-operator:changeset=<id> fingerprint=<hash> -->``
in a PR body ties a PR to its change set across runs and records which
recommendation it carried, so a closed PR is only proposed again when the
recommendation changed.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..models import ChangeSet
from .git import GitRepo, scrub_secrets

BRANCH_PREFIX = "finops/"
MARKER_RE = re.compile(r"<!--\s*finops-operator:changeset=(?P<id>[A-Za-z0-9._/-]+)\s+"
                       r"fingerprint=(?P<fp>[A-Za-z0-9]+)\s*-->")


@dataclass(slots=True)
class PullRequestRef:
    """What a provider knows about one change set's review request.

    ``state``: open | closed | merged | pushed (git provider: branch pushed, no PR API)
    | deferred (a limit stopped it this run; ``reason`` says which; nothing was made).
    """

    number: int | None
    url: str
    branch: str
    state: str
    merged_at: datetime | None = None
    head_sha: str | None = None
    fingerprint: str | None = None
    reason: str | None = None                       # why deferred / not reopened
    created: bool = False                           # opened by this call
    notes: list[str] = field(default_factory=list)  # non-fatal problems (a label that failed, ...)


@runtime_checkable
class Provider(Protocol):
    def publish(self, cs: ChangeSet, *, base_branch: str, labels: list[str], reviewers: list[str],
                draft: bool) -> PullRequestRef: ...

    def status(self, branch: str) -> PullRequestRef | None: ...

    def open_count(self) -> int: ...


def changeset_fingerprint(cs: ChangeSet) -> str:
    """Hash of the (non-skipped) findings' fingerprints, order independent."""
    fps = sorted(f"{f.id}:{f.fingerprint}" for f in cs.findings if f.id not in cs.skipped)
    return hashlib.sha256(",".join(fps).encode()).hexdigest()[:16]


def marker(cs_id: str, fingerprint: str) -> str:
    return f"<!-- finops-operator:changeset={cs_id} fingerprint={fingerprint} -->"


def parse_marker(body: str | None) -> tuple[str, str] | None:
    """(change set id, fingerprint) from a PR body, or None."""
    m = MARKER_RE.search(body or "")
    return (m.group("id"), m.group("fp")) if m else None


def body_with_marker(cs: ChangeSet, secrets: tuple[str | None, ...] = ()) -> tuple[str, str]:
    """The body to publish and its fingerprint.

    The rendered body's own marker wins (the renderer owns the text); if the body has
    none, our marker is appended. Secrets are scrubbed from the text either way.
    """
    body = scrub_secrets(cs.body or "", secrets)
    found = parse_marker(body)
    if found and found[0] == cs.id:
        return body, found[1]
    fp = changeset_fingerprint(cs)
    sep = "\n\n" if body and not body.endswith("\n\n") else ""
    return f"{body}{sep}{marker(cs.id, fp)}\n", fp


class GitProvider:
    """Push each change set as a branch to any git remote; no pull-request API.

    ``status``: merged when the pushed commit is an ancestor of the base branch
    (``merged_at`` = time of the base commit that brought it in), closed when the
    branch was deleted without merging, pushed while it waits.
    """

    def __init__(self, remote_url: str, workdir: Path | str, token: str | None = None, *,
                 base_branch: str = "main", timeout: float = 120.0,
                 commit_message: Callable[[ChangeSet], str] | None = None):
        self.remote_url = remote_url
        self.workdir = Path(workdir)
        self.token = token
        self.base_branch = base_branch
        self.timeout = timeout
        self.commit_message = commit_message
        self._repo: GitRepo | None = None

    def _git(self) -> GitRepo:
        """The work clone, fetched fresh (cloned on first use)."""
        if self._repo is None:
            self._repo = GitRepo.open_or_clone(self.remote_url, self.workdir, self.token, timeout=self.timeout)
        else:
            self._repo.fetch()
        return self._repo

    def _url(self, branch: str) -> str:
        return scrub_secrets(f"{self.remote_url}#{branch}", [self.token])

    def publish(self, cs: ChangeSet, *, base_branch: str | None = None, labels: list[str] | None = None,
                reviewers: list[str] | None = None, draft: bool = False) -> PullRequestRef:
        """Write the branch on the base tip and force-push it; labels/reviewers/draft do not apply."""
        base = base_branch or self.base_branch
        repo = self._git()
        _, fp = body_with_marker(cs, (self.token,))
        before = repo.rev_parse(f"refs/remotes/origin/{cs.branch}")
        sha = repo.write_branch(cs, base, message=self.commit_message(cs) if self.commit_message else None)
        if before != sha:
            repo.push(cs.branch, force=True)
        return PullRequestRef(None, self._url(cs.branch), cs.branch, "pushed", head_sha=sha, fingerprint=fp,
                              created=before is None)

    def status(self, branch: str, *, base_branch: str | None = None) -> PullRequestRef | None:
        """Lifecycle from refs: merged into base / still pushed / deleted (closed); None if never pushed."""
        repo = self._git()
        base = repo.base_ref(base_branch or self.base_branch)
        local = repo.rev_parse(f"refs/heads/{branch}")
        remote = repo.rev_parse(f"refs/remotes/origin/{branch}")
        head = remote or local
        if head is None:
            return None
        if repo.is_ancestor(head, base):
            return PullRequestRef(None, self._url(branch), branch, "merged", merged_at=self._merged_at(repo, head, base),
                                  head_sha=head)
        state = "pushed" if remote else "closed"
        return PullRequestRef(None, self._url(branch), branch, state, head_sha=head,
                              reason=None if remote else "branch deleted from the remote without merging")

    @staticmethod
    def _merged_at(repo: GitRepo, head: str, base: str) -> datetime:
        """Commit time of the oldest base commit on the ancestry path from ``head`` (the merge)."""
        path = repo.ancestry_path(head, base)
        return repo.commit_time(path[0] if path else head)

    def open_count(self) -> int:
        """Branches under ``finops/`` on the remote not yet merged into the base branch."""
        repo = self._git()
        base = repo.base_ref(self.base_branch)
        heads = repo.remote_branches(BRANCH_PREFIX).values()
        return sum(1 for sha in heads if not repo.is_ancestor(sha, base))
