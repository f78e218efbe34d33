"""Local git operations through the ``git`` command line (no GitPython).

Why plumbing: a change-set branch is built with a temporary index
(``read-tree`` / ``update-index`` / ``write-tree`` / ``commit-tree``) and the
branch ref is moved only once the commit exists. The working tree, the real
index and HEAD are never touched, so a failure at any step leaves the
repository exactly as it was (no half-made branch, no stray files), and a
user's uncommitted work in a local checkout is safe.

Credentials: a token is handed to git only through the child's environment
as an ``http.extraheader`` (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_0``), never
in a remote URL git could print, and every message that leaves this module is
passed through :func:`scrub_secrets`.

Example::

    repo = GitRepo.clone("https://github.com/acme/gitops.git", Path("/tmp/w"), token=tok)
    sha = repo.write_branch(change_set, "main")
    repo.push(change_set.branch)
"""
from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from .. import safeio
from ..errors import ProviderError, ProviderRefused
from ..models import ChangeSet, FileEdit
from ..scrub import scrub_secrets

log = logging.getLogger(__name__)

DEFAULT_AUTHOR = ("finops-operator", "finops-operator@users.noreply.local")
DEFAULT_TIMEOUT = 120.0
REMOTE = "origin"

# What git prints when a retry cannot help (credentials, permissions, no such repository): git gives
# no exit code per cause, so its own words decide the error class here, where git is called.
_GIT_REFUSED = re.compile(r"authentication failed|permission denied|repository not found|could not read username|"
                          r"does not appear to be a git repository|the requested url returned error: 40[134]",
                          re.IGNORECASE)


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def auth_env(token: str | None) -> dict[str, str]:
    """Environment that makes git send ``Authorization: Basic`` for every HTTP request.

    GitHub, GitLab and Gitea all accept a token as the password of HTTP basic auth.
    """
    if not token:
        return {}
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraheader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {_basic(token)}",
    }


@dataclass(frozen=True, slots=True)
class BranchWrite:
    """One branch written by :meth:`GitRepo.write_branches`: its new commit and what it pointed at before."""

    branch: str
    commit: str
    previous: str | None


@dataclass(frozen=True, slots=True)
class Author:
    name: str = DEFAULT_AUTHOR[0]
    email: str = DEFAULT_AUTHOR[1]


def remove_stale_locks(dest: Path) -> list[Path]:
    """Delete the ``*.lock`` files a killed git left in our own clone (index, refs, packed-refs, config).

    The clone belongs to one policy and its run Lease lets one run at a time use it, so a lock found
    when the clone is opened was left by a process that died (a SIGKILL mid-fetch or mid-commit);
    git would refuse every later fetch or commit ("Unable to create '...lock': File exists").
    """
    gitdir = dest / ".git" if (dest / ".git").is_dir() else dest
    stale = [p for p in gitdir.rglob("*.lock") if p.is_file() and not p.is_symlink()
             and "objects" not in p.relative_to(gitdir).parts]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


class GitRepo:
    """A local repository (usually a clone of the GitOps remote) driven by the git CLI."""

    def __init__(self, path: Path | str, *, token: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.path = Path(path)
        self.token = token
        self.timeout = timeout

    # ------------------------------------------------------------------ plumbing

    def _run(self, args: Sequence[str], *, input: bytes | None = None, env: dict[str, str] | None = None,
             check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run ``git <args>`` with a timeout, no prompts, and scrubbed errors."""
        full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "",
                    "LC_ALL": "C", **auth_env(self.token), **(env or {})}
        cmd = ["git", *args]
        where = str(cwd or self.path)
        try:
            proc = subprocess.run(cmd, cwd=cwd or self.path, input=input, env=full_env, check=False,
                                  capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise ProviderError(self._scrub(f"git {args[0]} timed out after {self.timeout:.0f}s; check that the "
                                            "remote is reachable or raise the timeout"), source=where) from None
        except FileNotFoundError:
            raise ProviderError(f"cannot run git in {where}: the git binary or the directory is missing; "
                                "install git and check the work directory", source=where) from None
        if check and proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace").strip() or proc.stdout.decode(errors="replace").strip()
            kind = ProviderRefused if _GIT_REFUSED.search(stderr) else ProviderError
            raise kind(self._scrub(f"git {args[0]} failed (exit {proc.returncode}): {stderr}"), source=where)
        return proc

    def _out(self, *args: str, **kw: object) -> str:
        return self._run(list(args), **kw).stdout.decode().strip()  # type: ignore[arg-type]

    def _scrub(self, text: str) -> str:
        return scrub_secrets(text, [self.token])

    # ------------------------------------------------------------------ setup

    @classmethod
    def clone(cls, url: str, dest: Path | str, token: str | None = None, *,
              timeout: float = DEFAULT_TIMEOUT) -> GitRepo:
        """Clone ``url`` into ``dest`` (a fresh, non-existing or empty directory)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        repo = cls(dest, token=token, timeout=timeout)
        repo._run(["clone", "--quiet", "--no-tags", url, str(dest)], cwd=dest.parent)
        return repo

    @classmethod
    def open_or_clone(cls, url: str, dest: Path | str, token: str | None = None, *,
                      timeout: float = DEFAULT_TIMEOUT) -> GitRepo:
        """Reuse a clone in ``dest`` if it is one of ``url``; else clone afresh."""
        dest = Path(dest)
        if (dest / ".git").exists() or (dest / "HEAD").exists():
            remove_stale_locks(dest)
            repo = cls(dest, token=token, timeout=timeout)
            current = repo._run(["remote", "get-url", REMOTE], check=False).stdout.decode().strip()
            if current != url:
                repo._out("remote", "set-url" if current else "add", REMOTE, url)
            repo.fetch()
            return repo
        return cls.clone(url, dest, token, timeout=timeout)

    def fetch(self) -> None:
        """Fetch every branch of the remote, pruning deleted ones."""
        self._run(["fetch", "--quiet", "--prune", "--no-tags", REMOTE,
                   f"+refs/heads/*:refs/remotes/{REMOTE}/*"])

    def has_remote(self) -> bool:
        return REMOTE in self._out("remote").split()

    # ------------------------------------------------------------------ refs

    def rev_parse(self, ref: str) -> str | None:
        """The commit sha of ``ref``, or None if it does not exist."""
        proc = self._run(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], check=False)
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def current_branch(self) -> str:
        """The checked-out branch's short name (for a local ``--apply`` without ``--base``)."""
        proc = self._run(["symbolic-ref", "--quiet", "--short", "HEAD"], check=False)
        name = proc.stdout.decode().strip()
        if proc.returncode != 0 or not name:
            raise ProviderError("HEAD is detached; check out the base branch or pass --base <branch>",
                                source=str(self.path), field="HEAD")
        return name

    def base_ref(self, base_branch: str) -> str:
        """The ref a change set starts from.

        A full ref (``refs/heads/main``) is used as given; a branch name means the remote's
        branch as last fetched (``refs/remotes/origin/<name>``) when there is a remote, else
        the local branch.
        """
        if base_branch.startswith("refs/"):
            if self.rev_parse(base_branch):
                return base_branch
            raise ProviderRefused(f"base ref {base_branch!r} does not exist", source=str(self.path), field="baseBranch")
        if self.has_remote() and self.rev_parse(f"refs/remotes/{REMOTE}/{base_branch}"):
            return f"refs/remotes/{REMOTE}/{base_branch}"
        if self.rev_parse(f"refs/heads/{base_branch}"):
            return f"refs/heads/{base_branch}"
        raise ProviderRefused(f"base branch {base_branch!r} does not exist; set the policy's base branch to an "
                            "existing branch of the GitOps repository", source=str(self.path), field="baseBranch")

    def base_sha(self, base_branch: str) -> str:
        """Current tip of the base branch (as last fetched)."""
        return self.rev_parse(self.base_ref(base_branch)) or ""

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        proc = self._run(["merge-base", "--is-ancestor", ancestor, descendant], check=False)
        if proc.returncode not in (0, 1):
            raise ProviderError(self._scrub(f"git merge-base failed: {proc.stderr.decode(errors='replace')}"),
                                source=str(self.path))
        return proc.returncode == 0

    def ancestry_path(self, ancestor: str, descendant: str) -> list[str]:
        """Commits on the path from ``ancestor`` (excluded) to ``descendant``, oldest first."""
        return self._out("rev-list", "--ancestry-path", "--reverse", f"{ancestor}..{descendant}").split()

    def remote_branches(self, prefix: str = "") -> dict[str, str]:
        """Remote-tracking branches (as last fetched) under ``prefix``: name -> sha."""
        out = self._out("for-each-ref", "--format=%(refname) %(objectname)", f"refs/remotes/{REMOTE}/{prefix}")
        strip = len(f"refs/remotes/{REMOTE}/")
        return {line.split()[0][strip:]: line.split()[1] for line in out.splitlines() if line.strip()}

    def message(self, ref: str) -> str:
        """The full commit message of ``ref``."""
        return self._out("show", "-s", "--format=%B", ref)

    def commit_time(self, ref: str) -> datetime:
        return datetime.fromisoformat(self._out("show", "-s", "--format=%cI", ref))

    def diff(self, base: str, branch: str) -> str:
        """The change a branch makes against the merge base with ``base`` (``git diff base...branch``)."""
        return self._run(["diff", "--no-color", "--no-ext-diff", f"{base}...{branch}"]).stdout.decode()

    def push(self, branch: str, *, force: bool = True) -> None:
        """Push local ``branch`` to the remote branch of the same name."""
        args = ["push", "--quiet", "--porcelain", REMOTE, f"refs/heads/{branch}:refs/heads/{branch}"]
        if force:
            args.insert(1, "--force")
        self._run(args)
        self._run(["update-ref", f"refs/remotes/{REMOTE}/{branch}", f"refs/heads/{branch}"])

    def delete_branch(self, branch: str) -> None:
        """Delete ``branch`` from the remote, the remote-tracking ref and the local branch."""
        self._run(["push", "--quiet", "--porcelain", REMOTE, f":refs/heads/{branch}"])
        self._run(["update-ref", "-d", f"refs/remotes/{REMOTE}/{branch}"], check=False)
        if self.current_branch() == branch:
            self._run(["checkout", "--quiet", "--detach"])
        self._run(["branch", "--quiet", "-D", branch], check=False)

    # ------------------------------------------------------------------ change sets

    def read_file(self, ref: str, path: str) -> str | None:
        """Content of ``path`` at ``ref`` (None if absent)."""
        proc = self._run(["cat-file", "blob", f"{ref}:{path}"], check=False)
        return proc.stdout.decode() if proc.returncode == 0 else None

    def write_branch(self, change_set: ChangeSet, base_branch: str, *, author: Author | None = None,
                     message: str | None = None, branch: str | None = None) -> str:
        """Create or reset ``change_set.branch`` (or ``branch``) to one commit on the base tip; return its sha.

        Every edit's ``before`` must equal the file at the base tip, else ProviderError
        ("base moved") and nothing changes. If the existing local branch already holds
        exactly this content on this base (locally or on the remote, as last fetched), its commit
        is reused: re-runs cause no churn and no needless force-push.
        """
        ref, sha, _ = self._prepare_branch(change_set, base_branch, author, message, branch)
        self._run(["update-ref", ref, sha])
        return sha

    def write_branches(self, change_sets: Sequence[ChangeSet], base_branch: str, *,
                       messages: dict[str, str] | None = None, author: Author | None = None) -> list[BranchWrite]:
        """Write every change set's branch, or none of them.

        All commits are built first (nothing a user sees moves), then every ref moves in one
        ``git update-ref --stdin`` transaction that checks each ref's old value: a failure at
        any point leaves every branch as it was. An existing branch is only rewritten when it
        is ours (:meth:`is_own_branch`); otherwise ProviderError names every such branch and
        nothing is written.
        """
        writes: list[BranchWrite] = []
        foreign: list[str] = []
        for cs in change_sets:
            ref, sha, old = self._prepare_branch(cs, base_branch, author, (messages or {}).get(cs.id), None)
            if old and old != sha and not self.is_own_branch(old, cs.id):
                foreign.append(cs.branch)
            writes.append(BranchWrite(cs.branch, sha, old))
        if foreign:
            raise ProviderRefused(f"branch(es) {', '.join(foreign)} already exist with commits finops did not write "
                                "(or for another change set); nothing was written. Merge or delete them "
                                f"(git branch -D {' '.join(foreign)}) and run again", source=str(self.path),
                                field="branches")
        zero = "0" * 40
        script = "".join(f"update refs/heads/{w.branch} {w.commit} {w.previous or zero}\n" for w in writes)
        self._run(["update-ref", "--stdin"], input=f"start\n{script}prepare\ncommit\n".encode())
        return writes

    def is_own_branch(self, sha: str, change_set_id: str) -> bool:
        """Whether finops may rewrite a branch at ``sha``: the tip is a (non-merge) commit finops wrote for
        this change set, by its ``Change-Set:`` trailer. A person's commit on top would be the tip, so it
        is never overwritten."""
        body = self._run(["show", "-s", "--format=%B", sha], check=False).stdout.decode(errors="replace")
        if f"Change-Set: {change_set_id}" not in body.splitlines():
            return False
        parents = self._out("rev-list", "--parents", "-n", "1", sha).split()[1:]
        return len(parents) == 1

    def _prepare_branch(self, change_set: ChangeSet, base_branch: str, author: Author | None,
                        message: str | None, branch: str | None) -> tuple[str, str, str | None]:
        """Build (but do not point any branch at) the commit of a change set: (ref, new sha, current sha)."""
        if not change_set.edits:
            raise ProviderError(f"change set {change_set.id!r} has no file edits; nothing to commit",
                                source=change_set.branch)
        base = self.base_sha(base_branch)
        for edit in change_set.edits:
            _check_path(edit.path, change_set.branch)
            current = self.read_file(base, edit.path)
            if current != edit.before:
                raise ProviderError(f"base moved: {edit.path} changed since the scan (base {base_branch} is now "
                                    f"{base[:12]}); re-run the scan to rebuild this change set",
                                    source=change_set.branch, field=edit.path)
        tree = self._build_tree(base, change_set.edits)
        if tree == self._out("rev-parse", f"{base}^{{tree}}"):
            raise ProviderError(f"change set {change_set.id!r} makes no change against {base_branch}; "
                                "its edits are already on the base branch", source=change_set.branch)
        ref = f"refs/heads/{branch or change_set.branch}"
        old = self.rev_parse(ref)
        for candidate in (old, self.rev_parse(f"refs/remotes/{REMOTE}/{branch or change_set.branch}")):
            if candidate and self._same_commit(candidate, base, tree):
                return ref, candidate, old
        return ref, self._commit_tree(tree, base, message or _message(change_set), author or Author()), old

    def _same_commit(self, sha: str, base: str, tree: str) -> bool:
        parents = self._out("rev-list", "--parents", "-n", "1", sha).split()[1:]
        return parents == [base] and self._out("rev-parse", f"{sha}^{{tree}}") == tree

    def _build_tree(self, base: str, edits: list[FileEdit]) -> str:
        """Apply edits on top of ``base`` in a throw-away index and return the tree sha."""
        with tempfile.TemporaryDirectory(prefix="finops-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._run(["read-tree", base], env=env)
            for edit in edits:
                if edit.after is None:
                    self._run(["update-index", "--force-remove", "--", edit.path], env=env)
                    continue
                blob = self._run(["hash-object", "-w", "--stdin"], input=edit.after.encode()).stdout.decode().strip()
                mode = self._mode(base, edit.path)
                self._run(["update-index", "--add", "--cacheinfo", f"{mode},{blob},{edit.path}"], env=env)
            return self._out("write-tree", env=env)

    def _mode(self, base: str, path: str) -> str:
        out = self._out("ls-tree", base, "--", path)
        return out.split()[0] if out else "100644"

    def _commit_tree(self, tree: str, parent: str, message: str, author: Author) -> str:
        env = {"GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
               "GIT_COMMITTER_NAME": author.name, "GIT_COMMITTER_EMAIL": author.email}
        return self._run(["commit-tree", tree, "-p", parent, "-F", "-"], input=message.encode(),
                         env=env).stdout.decode().strip()



def _message(change_set: ChangeSet) -> str:
    lines = [change_set.title, ""]
    lines += [f"- {f.title}" for f in change_set.findings if f.id not in change_set.skipped]
    lines += ["", f"Change-Set: {change_set.id}"]
    return "\n".join(lines) + "\n"


def _check_path(path: str, source: str) -> None:
    """The one rule for repository-relative paths (safeio.relpath_problem), plus: never inside .git."""
    if safeio.relpath_problem(path) is not None or PurePosixPath(path).parts[:1] == (".git",):
        raise ProviderError(f"edit path {path!r} is not a plain path inside the repository; the planner must "
                            "produce repository-relative paths", source=source, field="edits.path")
