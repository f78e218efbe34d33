"""Where change sets go: the Provider protocol, the PR reference, and the plain ``git`` provider.

A provider turns a planned :class:`ChangeSet` into something a human reviews:
a GitHub pull request (``github.py``) or, for GitLab/Gitea/plain git users
without a PR API here, a pushed branch (:class:`GitProvider`). The control
loop only needs three calls: ``publish`` (idempotent), ``status`` (lifecycle:
open / merged with its time / closed) and ``open_count`` (for the open-PR
guardrail).

The hidden marker ``<!-- finops-operator:changeset=<id> fingerprint=<hash> savings=<usd> -->``
in a PR body (and the ``Fingerprint:`` / ``Monthly-Savings:`` trailers of a pushed
commit) ties a review request to its change set across runs and records which
recommendation it carried. A rejected one (PR closed, branch deleted) is proposed
again only under THE reopen rule, :func:`finops_operator.ledger.should_reopen`;
the ledger applies it first (as a guardrail), the providers apply the same rule
from what the forge remembers, for a ledger that was lost.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..ledger import Proposal, should_reopen
from ..models import ChangeSet
from .git import GitRepo, _message, scrub_secrets

BRANCH_PREFIX = "finops/"
MARKER_RE = re.compile(r"<!--\s*finops-operator:changeset=(?P<id>[A-Za-z0-9._/-]+)\s+"
                       r"fingerprint=(?P<fp>[A-Za-z0-9]+)(?:\s+savings=(?P<usd>-?[0-9]+(?:\.[0-9]+)?))?\s*-->")
TRAILER_RE = re.compile(r"^(?P<key>Fingerprint|Monthly-Savings):\s*(?P<value>\S+)\s*$", re.MULTILINE)
NOT_REOPENED = "closed without merging; not reopened: the recommendation did not change materially"
WITHDRAWN = "<!-- finops-operator:withdrawn -->"   # the operator closed the PR itself: not a human's rejection


def withdrawn_body(body: str | None, reason: str, limit: int | None = None) -> str:
    """A PR body closed by the operator: the reason for people, then the marker the reopen check reads.

    ``limit``: the forge's body size; the original text is cut, never the note or the marker.
    """
    note = f"\n\n> [!NOTE]\n> **Closed by finops-operator:** {reason}\n\n{WITHDRAWN}\n"
    text = (body or "").rstrip()
    if limit is not None:
        text = text[:max(0, limit - len(note))]
    return text + note


def is_withdrawn(body: str | None) -> bool:
    """Whether the operator closed this PR itself (a new one may be opened; the reopen rule is for humans)."""
    return WITHDRAWN in (body or "")


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
    savings: float | None = None                    # monthly savings the PR carried (from the marker)
    reason: str | None = None                       # why deferred / not reopened
    created: bool = False                           # opened by this call
    notes: list[str] = field(default_factory=list)  # non-fatal problems (a label that failed, ...)


@runtime_checkable
class Provider(Protocol):
    def publish(self, cs: ChangeSet, *, base_branch: str, labels: list[str], reviewers: list[str],
                draft: bool) -> PullRequestRef: ...

    def status(self, branch: str) -> PullRequestRef | None: ...

    def open_count(self) -> int: ...

    def close(self, branch: str, reason: str) -> PullRequestRef | None: ...


def changeset_fingerprint(cs: ChangeSet) -> str:
    """Hash of the (non-skipped) findings' fingerprints, order independent."""
    fps = sorted(f"{f.id}:{f.fingerprint}" for f in cs.findings if f.id not in cs.skipped)
    return hashlib.sha256(",".join(fps).encode()).hexdigest()[:16]


def changeset_savings(cs: ChangeSet) -> float:
    """Monthly savings of the (non-skipped) findings, rounded to cents as the marker holds it."""
    return round(cs.monthly_savings, 2)


def marker(cs_id: str, fingerprint: str, savings: float | None = None) -> str:
    usd = "" if savings is None else f" savings={savings:.2f}"
    return f"<!-- finops-operator:changeset={cs_id} fingerprint={fingerprint}{usd} -->"


def marker_for(cs: ChangeSet) -> str:
    """The marker of a change set as it is now."""
    return marker(cs.id, changeset_fingerprint(cs), changeset_savings(cs))


def parse_marker(body: str | None) -> tuple[str, str] | None:
    """(change set id, fingerprint) from a PR body, or None."""
    m = MARKER_RE.search(body or "")
    return (m.group("id"), m.group("fp")) if m else None


def carried(body: str | None) -> Proposal:
    """What a PR body (its marker) or a commit message (its trailers) says the change carried."""
    m = MARKER_RE.search(body or "")
    if m:
        return Proposal(m.group("fp"), float(m.group("usd")) if m.group("usd") else None)
    trailers = {t.group("key"): t.group("value") for t in TRAILER_RE.finditer(body or "")}
    try:
        savings = float(trailers["Monthly-Savings"]) if "Monthly-Savings" in trailers else None
    except ValueError:
        savings = None
    return Proposal(trailers.get("Fingerprint"), savings)


def reopen(rejected: Proposal, cs: ChangeSet) -> bool:
    """THE reopen rule (ledger.should_reopen) applied to a change set."""
    return should_reopen(rejected, changeset_fingerprint(cs), changeset_savings(cs))


def with_trailers(message: str, cs: ChangeSet) -> str:
    """The commit message with the ``Fingerprint:`` and ``Monthly-Savings:`` trailers the reopen rule reads."""
    have = {t.group("key") for t in TRAILER_RE.finditer(message)}
    add = [] if "Fingerprint" in have else [f"Fingerprint: {changeset_fingerprint(cs)}"]
    add += [] if "Monthly-Savings" in have else [f"Monthly-Savings: {changeset_savings(cs):.2f}"]
    if not add:
        return message
    last = (message.rstrip().splitlines() or [""])[-1]
    sep = "\n" if re.fullmatch(r"[A-Za-z-]+: \S.*", last) else "\n\n"      # join an existing trailer block
    return message.rstrip() + sep + "\n".join(add) + "\n"


def body_with_marker(cs: ChangeSet, secrets: tuple[str | None, ...] = ()) -> tuple[str, str]:
    """The body to publish and its fingerprint.

    The rendered body's own marker wins (the renderer owns the text); if the body has
    none, our marker is appended. Secrets are scrubbed from the text either way.
    """
    body = scrub_secrets(cs.body or "", secrets)
    found = parse_marker(body)
    if found and found[0] == cs.id:
        return body, found[1]
    sep = "\n\n" if body and not body.endswith("\n\n") else ""
    return f"{body}{sep}{marker_for(cs)}\n", changeset_fingerprint(cs)


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
        """Write the branch on the base tip and force-push it; labels/reviewers/draft do not apply.

        A branch deleted from the remote without merging was rejected: it is pushed
        again only under the reopen rule (fingerprint and savings from its last commit).
        """
        base = base_branch or self.base_branch
        repo = self._git()
        _, fp = body_with_marker(cs, (self.token,))
        before = repo.rev_parse(f"refs/remotes/origin/{cs.branch}")
        local = repo.rev_parse(f"refs/heads/{cs.branch}")
        if before is None and local is not None and not repo.is_ancestor(local, repo.base_ref(base)):
            if not reopen(carried(repo.message(local)), cs):
                return PullRequestRef(None, self._url(cs.branch), cs.branch, "closed", head_sha=local,
                                      fingerprint=fp, reason=NOT_REOPENED)
        message = with_trailers(self.commit_message(cs) if self.commit_message else _message(cs), cs)
        sha = repo.write_branch(cs, base, message=message)
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

    def close(self, branch: str, reason: str) -> PullRequestRef | None:
        """Withdraw a pushed branch: delete it from the remote and here (None when it was not pushed).

        Nothing remembers it afterwards, so a later publish of the change set pushes it afresh.
        """
        repo = self._git()
        if repo.rev_parse(f"refs/remotes/origin/{branch}") is None:
            return None
        head = repo.rev_parse(f"refs/remotes/origin/{branch}")
        repo.delete_branch(branch)
        return PullRequestRef(None, self._url(branch), branch, "closed", head_sha=head, reason=reason)

    def open_count(self) -> int:
        """Branches under ``finops/`` on the remote not yet merged into the base branch."""
        repo = self._git()
        base = repo.base_ref(self.base_branch)
        heads = repo.remote_branches(BRANCH_PREFIX).values()
        return sum(1 for sha in heads if not repo.is_ancestor(sha, base))
