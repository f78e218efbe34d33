"""The GitHub provider: one branch + one pull request per change set, through PyGithub.

Idempotent across runs. A PR belongs to a change set by its head branch
(``finops/<id>``) or by the hidden marker in its body. Each ``publish``:

- open PR found     -> rebuild the branch on the current base tip (this is the
  rebase of a stale PR), force-push only if the commit changed, edit title/body/
  base if they changed, add missing labels, request missing reviewers; never a
  second PR. Every update converges to the policy, so a run killed between
  creating a PR and labelling it or requesting reviews is completed by the next.
  A reviewer is requested once: one who already reviewed is not asked again.
  Draft state is set when the PR is opened and then left to people (GitHub's
  REST API cannot change it; a human marks a PR ready).
- merged PR, same fingerprint -> nothing to do (reported as merged).
- closed PR (a human said no) -> left alone unless THE reopen rule
  (:func:`finops_operator.ledger.should_reopen`, from the fingerprint and savings
  in the closed PR's marker) says the recommendation changed materially; then a
  new PR is opened, since GitHub refuses to reopen a PR whose branch was
  force-pushed.
- closed by the operator itself (``close``: a FreezeGrowth released; the body
  carries ``providers.WITHDRAWN``) -> not a rejection: a new PR is opened.
- nothing yet       -> open a PR, unless the hourly limit is reached (returns
  ``state="deferred"`` with the reason; nothing is pushed). The open-PR limit is
  planning's (``actuation.plan``), fed by :meth:`GitHubProvider.open_count`.

Failures never leave a duplicate or half-made PR: if creating the PR fails after
the push, the next run finds the branch and creates it; a 422 "already exists"
after a retried POST is resolved by finding that PR; failed labels and reviewer
requests are retried on the next run. Retries for 5xx and secondary rate limits use PyGithub's own
:class:`github.GithubRetry`. The token is only given to PyGithub and to git's
environment, and every error message is scrubbed of it.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.GithubObject import NotSet
from github.PullRequest import PullRequest
from urllib3.util.retry import Retry

from ..errors import ProviderError, ProviderRefused
from ..models import ChangeSet
from ..scrub import scrub
from .git import Author, GitRepo, scrub_secrets
from ..ledger import Proposal
from .providers import (NOT_REOPENED, BRANCH_PREFIX, PullRequestRef, body_with_marker, carried, is_withdrawn, parse_marker,
                        reopen, withdrawn_body)
from .render import render_title

log = logging.getLogger(__name__)
MAX_ERROR_TEXT = 1000  # an error text in status/Events (GitHub answers can be long)


def utcnow() -> datetime:
    """Test seam for the hourly limit."""
    return datetime.now(UTC)


def default_git_url(api_url: str, repo: str) -> str:
    """https://api.github.com -> https://github.com/<repo>.git; GHE https://h/api/v3 -> https://h/<repo>.git."""
    root = api_url.rstrip("/")
    root = root.replace("://api.github.com", "://github.com")
    root = root.removesuffix("/api/v3")
    return f"{root}/{repo}.git"


class GitHubProvider:
    """Publish change sets as GitHub pull requests. See the module docstring for the rules."""

    def __init__(self, repo_full_name: str, token: str, *, workdir: Path | str, api_url: str = "https://api.github.com",
                 git_url: str | None = None, base_branch: str = "main",
                 max_prs_per_hour: int = 10, retries: int = 5, backoff_factor: float = 1.0, secondary_rate_wait: float = 60.0,
                 max_rate_limit_wait: float = 300.0, seconds_between_requests: float | None = 0.25,
                 seconds_between_writes: float | None = 1.0, timeout: float = 30.0,
                 author: Author | None = None, clock: Callable[[], datetime] = utcnow,
                 commit_message: Callable[[ChangeSet], str] | None = None):
        if not token:
            raise ProviderRefused("no GitHub token: set the token secret (needs contents:write and "
                                "pull_requests:write on the repository)", source=f"github:{repo_full_name}")
        self.repo_name = repo_full_name
        self.owner = repo_full_name.split("/")[0]
        self.token = token
        self.api_url = api_url
        self.git_url = git_url or default_git_url(api_url, repo_full_name)
        self.workdir = Path(workdir)
        self.base_branch = base_branch
        self.max_prs_per_hour = max_prs_per_hour
        self.retries = retries
        self.author = author
        self.clock = clock
        self.commit_message = commit_message
        retry = GithubRetry(total=retries, backoff_factor=backoff_factor, secondary_rate_wait=secondary_rate_wait,
                            max_rate_limit_wait=max_rate_limit_wait,
                            allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"GET", "POST", "PATCH"})
        self._gh = Github(auth=Auth.Token(token), base_url=api_url, timeout=int(timeout), retry=retry, per_page=100,
                          user_agent="finops-operator", seconds_between_requests=seconds_between_requests,
                          seconds_between_writes=seconds_between_writes)
        self._repo: Any = None
        self._git: GitRepo | None = None

    # ------------------------------------------------------------------ errors

    def _scrub(self, text: str) -> str:
        return scrub_secrets(text, [self.token])

    def _error(self, text: str) -> str:
        """An error text for status and Events: what GitHub answered, scrubbed and bounded."""
        return scrub(text, [self.token], limit=MAX_ERROR_TEXT)

    @contextmanager
    def _api(self, action: str) -> Iterator[None]:
        """Turn PyGithub/requests failures into ProviderError with an actionable, token-free message."""
        try:
            yield
        except ProviderError:
            raise
        except GithubException as exc:
            raise _github_error_class(exc)(self._error(_github_message(exc, action, self.repo_name)),
                                           source=f"github:{self.repo_name}") from None
        except requests.exceptions.RetryError as exc:
            raise ProviderError(self._error(f"GitHub kept failing while trying to {action} ({_reason(exc)}) after "
                                            f"{self.retries} retries; GitHub may be down, try again later"),
                                source=f"github:{self.repo_name}") from None
        except requests.exceptions.RequestException as exc:
            raise ProviderError(self._error(f"cannot reach GitHub at {self.api_url} to {action}: "
                                            f"{type(exc).__name__}: {exc}; check the apiUrl and network policy"),
                                source=f"github:{self.repo_name}") from None

    # ------------------------------------------------------------------ plumbing

    def _repository(self) -> Any:
        if self._repo is None:
            with self._api("read the repository"):
                self._repo = self._gh.get_repo(self.repo_name)
        return self._repo

    def _clone(self) -> GitRepo:
        if self._git is None:
            self._git = GitRepo.open_or_clone(self.git_url, self.workdir, self.token)
        else:
            self._git.fetch()
        return self._git

    def _push(self, cs: ChangeSet, base: str, branch: str | None = None) -> str:
        """Rebuild the branch on the base tip; force-push it only if the remote differs."""
        branch = branch or cs.branch
        repo = self._clone()
        message = self.commit_message(cs) if self.commit_message else None
        sha = repo.write_branch(cs, base, author=self.author, branch=branch, message=message)
        if repo.rev_parse(f"refs/remotes/origin/{branch}") != sha:
            repo.push(branch, force=True)
            log.info("pushed %s at %s", branch, sha[:12])
        return sha

    def _ref(self, pr: PullRequest, **extra: Any) -> PullRequestRef:
        state = "merged" if pr.merged_at else pr.state
        found = carried(pr.body)
        return PullRequestRef(pr.number, pr.html_url, pr.head.ref, state, merged_at=pr.merged_at,
                              head_sha=pr.head.sha, fingerprint=found.fingerprint, savings=found.savings, **extra)

    def _pulls(self, state: str, head: str | None = None) -> list[PullRequest]:
        repo = self._repository()
        with self._api(f"list {state} pull requests"):
            if head:
                pulls = repo.get_pulls(state=state, head=f"{self.owner}:{head}", sort="created", direction="desc")
                return [p for p in pulls if p.head.ref == head]
            return list(repo.get_pulls(state=state, sort="created", direction="desc"))

    def _find(self, cs: ChangeSet, open_prs: list[PullRequest]) -> tuple[PullRequest | None, PullRequest | None]:
        """(open PR of this change set, latest closed one) by head branch or body marker."""
        for pr in open_prs:
            marked = parse_marker(pr.body)
            if pr.head.ref == cs.branch or (marked and marked[0] == cs.id):
                return pr, None
        closed = self._pulls("closed", head=cs.branch)
        return None, (closed[0] if closed else None)

    # ------------------------------------------------------------------ Provider

    def publish(self, cs: ChangeSet, *, base_branch: str | None = None, labels: list[str] | None = None,
                reviewers: list[str] | None = None, draft: bool = False) -> PullRequestRef:
        """Open or update the pull request for ``cs``; see the module docstring."""
        base = base_branch or self.base_branch
        body, fp = body_with_marker(cs, (self.token,))
        title = self._scrub(render_title(cs))
        open_prs = self._pulls("open")
        current, closed = self._find(cs, open_prs)
        wanted = _Wanted(list(labels or []), list(reviewers or []))
        if current is not None:
            return self._update(current, cs, base, title, body, wanted)
        note: str | None = None
        if closed is not None:
            old = self._ref(closed)
            if old.state == "merged" and old.fingerprint == fp:
                return self._ref(closed, reason="already merged with this recommendation")
            if old.state == "closed" and not is_withdrawn(closed.body) \
                    and not reopen(Proposal(old.fingerprint, old.savings), cs):
                return self._ref(closed, reason=NOT_REOPENED)
            note = f"Previously proposed in #{closed.number}, which was {old.state}."
        deferred = self._limit_reason()
        if deferred:
            log.info("deferred %s: %s", cs.branch, deferred)
            return PullRequestRef(None, "", cs.branch, "deferred", fingerprint=fp, reason=deferred)
        return self._create(cs, base, title, _with_note(body, note), draft, wanted)

    def _update(self, pr: PullRequest, cs: ChangeSet, base: str, title: str, body: str,
                wanted: _Wanted) -> PullRequestRef:
        sha = self._push(cs, base, branch=pr.head.ref)  # the PR's own branch, even if found by marker
        changes: dict[str, str] = {}
        if pr.title != title:
            changes["title"] = title
        if (pr.body or "") != body:
            changes["body"] = body
        if pr.base.ref != base:
            changes["base"] = base
        if changes:
            with self._api(f"update pull request #{pr.number}"):
                pr.edit(title=changes.get("title", NotSet), body=changes.get("body", NotSet),
                        base=changes.get("base", NotSet))
            log.info("updated PR #%d (%s)", pr.number, ", ".join(sorted(changes)))
        notes = self._ensure_labels(pr, wanted.labels) + self._ensure_reviewers(pr, wanted.reviewers)
        ref = self._ref(pr, notes=notes)
        ref.head_sha = sha
        return ref

    def _create(self, cs: ChangeSet, base: str, title: str, body: str, draft: bool,
                wanted: _Wanted) -> PullRequestRef:
        sha = self._push(cs, base)
        repo = self._repository()
        try:
            with self._api(f"create the pull request for {cs.branch}"):
                pr = repo.create_pull(base=base, head=cs.branch, title=title, body=body, draft=draft)
        except ProviderError as err:
            if "already exists" not in str(err):
                raise
            existing = [p for p in self._pulls("open", head=cs.branch)]
            if not existing:
                raise
            log.info("PR for %s already existed (a retried request had created it)", cs.branch)
            return self._update(existing[0], cs, base, title, body, wanted)
        log.info("opened PR #%d for %s", pr.number, cs.branch)
        notes = self._ensure_labels(pr, wanted.labels) + self._ensure_reviewers(pr, wanted.reviewers, new=True)
        ref = self._ref(pr, created=True, notes=notes)
        ref.head_sha = sha
        return ref

    def _ensure_labels(self, pr: PullRequest, labels: list[str]) -> list[str]:
        """Add labels the PR lacks; a failure is a note (retried next run), not an error."""
        have = {label.name for label in pr.labels}
        missing = [name for name in labels if name not in have]
        if not missing:
            return []
        try:
            with self._api(f"add labels to #{pr.number}"):
                pr.add_to_labels(*missing)
        except ProviderError as err:
            log.warning("labels not added (will retry next run): %s", err)
            return [f"labels {missing} not added yet: {err.message}"]
        return []

    def _ensure_reviewers(self, pr: PullRequest, reviewers: list[str], *, new: bool = False) -> list[str]:
        """Request the reviewers not yet requested and not yet reviewing; a failure is a note (retried next run)."""
        if not reviewers:
            return []
        missing = [r for r in dict.fromkeys(reviewers) if r != pr.user.login]
        if missing and not new:
            with self._api(f"read the review requests of #{pr.number}"):
                users, _teams = pr.get_review_requests()
                asked = {u.login for u in users} | {r.user.login for r in pr.get_reviews() if r.user is not None}
            missing = [r for r in missing if r not in asked]
        if not missing:
            return []
        try:
            with self._api(f"request reviewers on #{pr.number}"):
                pr.create_review_request(reviewers=missing)
        except ProviderError as err:
            log.warning("reviewers not requested (will retry next run): %s", err)
            return [f"reviewers {missing} not requested yet: {err.message}"]
        return []

    def _limit_reason(self) -> str | None:
        since = self.clock() - timedelta(hours=1)
        recent: list[datetime] = []
        repo = self._repository()
        with self._api("count pull requests opened in the last hour"):
            for pr in repo.get_pulls(state="all", sort="created", direction="desc"):
                if pr.created_at < since:
                    break
                if pr.head.ref.startswith(BRANCH_PREFIX):
                    recent.append(pr.created_at)
        if len(recent) >= self.max_prs_per_hour:
            next_slot = sorted(recent)[len(recent) - self.max_prs_per_hour] + timedelta(hours=1)
            return (f"hourly PR limit reached: {len(recent)} finops PRs opened in the last hour "
                    f"(limit {self.max_prs_per_hour}); next slot at {next_slot:%Y-%m-%d %H:%M:%S} UTC")
        return None

    def status(self, branch: str) -> PullRequestRef | None:
        """The newest PR for ``branch``: open / merged (with merged_at) / closed; None if there is none."""
        pulls = self._pulls("all", head=branch)
        return self._ref(pulls[0]) if pulls else None

    def close(self, branch: str, reason: str) -> PullRequestRef | None:
        """Close the open PR of ``branch`` with ``reason`` in its body (the operator's own withdrawal: a later
        publish of the change set opens a new PR, the reopen rule being for what humans closed). None: no open PR."""
        current = self._pulls("open", head=branch)
        if not current:
            return None
        pr = current[0]
        with self._api(f"close pull request #{pr.number}"):
            pr.edit(state="closed", body=withdrawn_body(pr.body, self._scrub(reason), MAX_BODY))
        log.info("closed PR #%d (%s): %s", pr.number, branch, reason)
        return self._ref(pr, reason=reason)

    def open_count(self) -> int:
        """Open PRs this operator made (head branch under ``finops/``)."""
        return sum(1 for p in self._pulls("open") if p.head.ref.startswith(BRANCH_PREFIX))


MAX_BODY = 65536  # GitHub's limit on a PR body


@dataclass(frozen=True)
class _Wanted:
    """What the policy wants on every PR (converged on each update)."""

    labels: list[str]
    reviewers: list[str]


def _with_note(body: str, note: str | None) -> str:
    """Append a short italic note unless that would break GitHub's body limit."""
    if not note:
        return body
    noted = f"{body.rstrip()}\n\n_{note}_\n"
    return noted if len(noted) <= MAX_BODY else body


def _reason(exc: Exception) -> str:
    """'HTTP 502 each time' from urllib3's "too many 502 error responses"."""
    found = re.search(r"too many (\d+) error responses", str(exc))
    return f"HTTP {found.group(1)} each time" if found else type(exc).__name__


def _rate_limited(exc: GithubException, message: str) -> bool:
    return isinstance(exc, RateLimitExceededExceedsMaxWait) or (exc.status in (403, 429)
                                                                and "rate limit" in message.lower())


def _github_error_class(exc: GithubException) -> type[ProviderError]:
    """401/403/404/422 cannot succeed on a retry (token, permission, repository, request); the rest may."""
    data = exc.data if isinstance(exc.data, dict) else {}
    if _rate_limited(exc, str(data.get("message") or exc.message or "")):
        return ProviderError
    return ProviderRefused if exc.status in (401, 403, 404, 422) else ProviderError


def _github_message(exc: GithubException, action: str, repo: str) -> str:
    """A sentence a person can act on, for each status GitHub answers with."""
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "")
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    status = exc.status
    if _rate_limited(exc, message):
        return f"GitHub rate limit hit while trying to {action}: {message.strip()} Rate limited until {_until(headers)}."
    if status == 401:
        return (f"GitHub token invalid or expired (401 {message}) while trying to {action}; create a new token "
                "with contents:write and pull_requests:write and update the secret")
    if status == 403:
        perm = headers.get("x-accepted-github-permissions") or "contents:write and pull_requests:write"
        return (f"GitHub token lacks permission to {action} on {repo} (403 {message}); missing permission: {perm}")
    if status == 404:
        return (f"repository {repo} not found, or the token cannot see it (404) while trying to {action}; check "
                "the repository name and that the token has access to it")
    if status == 422:
        details = "; ".join(str(e.get("message") or f"{e.get('field')} {e.get('code')}")
                            for e in data.get("errors", []) if isinstance(e, dict))
        return f"GitHub rejected the request to {action} (422 {message}{': ' + details if details else ''})"
    if status >= 500:
        return f"GitHub server error {status} while trying to {action}: {message}; try again later"
    return f"GitHub answered {status} while trying to {action}: {message}"


def _until(headers: dict[str, Any]) -> str:
    if headers.get("retry-after"):
        return f"{headers['retry-after']}s from now (Retry-After)"
    reset = headers.get("x-ratelimit-reset")
    if reset and str(reset).isdigit():
        return datetime.fromtimestamp(int(reset), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "an unknown time"
