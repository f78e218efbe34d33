"""actuation/git.py against real repositories: a bare remote on disk and clones of it."""
from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from finops_operator.actuation.git import Author, GitRepo, scrub_secrets
from finops_operator.errors import ProviderError

from tests.support.fixtures_git import GITOPS_TREE, commit_files, cpu_edit, git, make_change_set, read_blob, ref_sha

pytestmark = pytest.mark.integration
DEPLOY = "apps/payments/deployment.yaml"


def all_refs(path: Path) -> str:
    return git("for-each-ref", "--format=%(refname) %(objectname)", cwd=path)


def test_write_branch_and_push_make_one_commit_on_base(bare_remote: Path, tmp_path: Path) -> None:
    repo = GitRepo.clone(str(bare_remote), tmp_path / "w")
    head_before = git("rev-parse", "HEAD", cwd=repo.path)
    cs = make_change_set("rightsize-payments", {**cpu_edit("400m"), "apps/payments/NOTES.md": (None, "new\n"),
                                                "README.md": (GITOPS_TREE["README.md"], None)})
    sha = repo.write_branch(cs, "main")
    repo.push(cs.branch)

    assert ref_sha(bare_remote, "refs/heads/finops/rightsize-payments") == sha
    parents = git("rev-list", "--parents", "-n", "1", sha, cwd=bare_remote).split()[1:]
    assert parents == [ref_sha(bare_remote, "refs/heads/main")]
    assert read_blob(bare_remote, sha, DEPLOY) == cpu_edit("400m")[DEPLOY][1]  # byte for byte
    assert read_blob(bare_remote, sha, "apps/payments/NOTES.md") == "new\n"
    assert read_blob(bare_remote, sha, "README.md") is None
    author = git("show", "-s", "--format=%an <%ae>|%cn <%ce>|%s", sha, cwd=bare_remote)
    assert author == ("finops-operator <finops-operator@users.noreply.local>|"
                      "finops-operator <finops-operator@users.noreply.local>|finops: right-size rightsize-payments")
    # one commit with all files; the clone's checkout and HEAD are untouched
    assert sorted(git("diff", "--name-only", f"refs/remotes/origin/main...{cs.branch}", cwd=repo.path).split()) == sorted(
        [DEPLOY, "apps/payments/NOTES.md", "README.md"])
    assert git("rev-parse", "HEAD", cwd=repo.path) == head_before
    assert git("status", "--porcelain", cwd=repo.path) == ""
    heads = git("ls-remote", "--heads", "origin", cwd=repo.path)
    assert f"refs/heads/{cs.branch}" in heads and "finops/other" not in heads
    assert "+              cpu: 400m" in repo.diff("origin/main", cs.branch)


def test_rerun_reuses_commit_and_changed_set_force_pushes(bare_remote: Path, tmp_path: Path) -> None:
    repo = GitRepo.clone(str(bare_remote), tmp_path / "w")
    first = repo.write_branch(make_change_set("cs", cpu_edit("400m")), "main")
    repo.push("finops/cs")
    assert repo.write_branch(make_change_set("cs", cpu_edit("400m")), "main") == first  # no churn
    second = repo.write_branch(make_change_set("cs", cpu_edit("300m")), "main")
    assert second != first
    repo.push("finops/cs")
    assert ref_sha(bare_remote, "refs/heads/finops/cs") == second
    assert not repo.is_ancestor(first, second)  # replaced, not stacked: still one commit on main
    assert git("rev-list", "--count", "main..finops/cs", cwd=bare_remote) == "1"


def test_base_moved_on_edited_file_raises_and_changes_nothing(bare_remote: Path, tmp_path: Path) -> None:
    repo = GitRepo.clone(str(bare_remote), tmp_path / "w")
    repo.write_branch(make_change_set("cs", cpu_edit("400m")), "main")
    repo.push("finops/cs")
    commit_files(bare_remote, "main", {DEPLOY: GITOPS_TREE[DEPLOY].replace("replicas: 3", "replicas: 5")},
                 "human edit")
    repo.fetch()
    local_before, remote_before = all_refs(repo.path), all_refs(bare_remote)
    with pytest.raises(ProviderError) as err:
        repo.write_branch(make_change_set("cs", cpu_edit("300m")), "main")
    assert f"base moved: {DEPLOY} changed since the scan" in str(err.value)
    assert err.value.field == DEPLOY
    assert all_refs(repo.path) == local_before and all_refs(bare_remote) == remote_before
    with pytest.raises(ProviderError, match="base moved"):
        repo.write_branch(make_change_set("fresh", cpu_edit("300m")), "main")
    assert repo.rev_parse("refs/heads/finops/fresh") is None  # no half-made branch


def test_base_moved_elsewhere_recreates_branch_on_new_tip(bare_remote: Path, tmp_path: Path) -> None:
    repo = GitRepo.clone(str(bare_remote), tmp_path / "w")
    old = repo.write_branch(make_change_set("cs", cpu_edit("400m")), "main")
    new_main = commit_files(bare_remote, "main", {"docs/x.md": "x\n"}, "unrelated")
    repo.fetch()
    assert repo.base_sha("main") == new_main
    new = repo.write_branch(make_change_set("cs", cpu_edit("400m")), "main")
    assert new != old and repo.is_ancestor(new_main, new)
    assert git("rev-list", "--count", f"{new_main}..{new}", cwd=repo.path) == "1"


def test_custom_author_and_message(bare_remote: Path, tmp_path: Path) -> None:
    repo = GitRepo.clone(str(bare_remote), tmp_path / "w")
    sha = repo.write_branch(make_change_set("cs", cpu_edit()), "main", author=Author("Bot", "bot@corp.test"),
                            message="custom subject\n")
    assert git("show", "-s", "--format=%an %ae %s", sha, cwd=repo.path) == "Bot bot@corp.test custom subject"


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.yaml", ".git/config", "a/../../b"])
def test_paths_outside_the_repository_are_refused(bare_remote: Path, tmp_path: Path, path: str) -> None:
    repo = GitRepo.clone(str(bare_remote), tmp_path / "w")
    with pytest.raises(ProviderError, match="not a plain path inside the repository"):
        repo.write_branch(make_change_set("cs", {path: (None, "x")}), "main")
    assert repo.rev_parse("refs/heads/finops/cs") is None


def test_empty_or_noop_change_sets_are_refused(bare_remote: Path, tmp_path: Path) -> None:
    repo = GitRepo.clone(str(bare_remote), tmp_path / "w")
    with pytest.raises(ProviderError, match="no file edits"):
        repo.write_branch(make_change_set("cs", {}), "main")
    same = GITOPS_TREE[DEPLOY]
    with pytest.raises(ProviderError, match="makes no change"):
        repo.write_branch(make_change_set("cs", {DEPLOY: (same, same)}), "main")
    with pytest.raises(ProviderError, match="base branch 'trunk' does not exist") as err:
        repo.write_branch(make_change_set("cs", cpu_edit()), "trunk")
    assert err.value.field == "baseBranch"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_token_never_appears_in_errors_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = "ghp_" + "A1b2C3d4" * 5
    url = f"http://127.0.0.1:{_closed_port()}/acme/gitops.git"
    with pytest.raises(ProviderError) as err:
        GitRepo.clone(url, tmp_path / "w", token=token, timeout=20)
    assert "git clone failed" in str(err.value)
    assert token not in str(err.value) and token not in caplog.text
    # a token someone put into the URL itself is scrubbed from git's own error text too
    with pytest.raises(ProviderError) as err2:
        GitRepo.clone(url.replace("http://", f"http://x-access-token:{token}@"), tmp_path / "w2", timeout=20)
    assert token not in str(err2.value) and "git clone failed" in str(err2.value)


def test_scrub_secrets_patterns() -> None:
    tok = "s3cr3t-value-123"
    text = (f"fatal: https://bot:{tok}@github.com/a/b.git Authorization: Basic abcdEF== "
            "ghp_0123456789abcdefABCDEF0123 github_pat_11AAAAAAA0123456789_abcdefghijkl "
            "glpat-abcdefghij0123456789")
    out = scrub_secrets(text, [tok])
    assert tok not in out and "abcdEF==" not in out and "ghp_" not in out
    assert "github_pat_" not in out and "glpat-" not in out
    assert "github.com/a/b.git" in out  # the useful part stays


def test_current_branch_and_explicit_local_base(bare_remote: Path, tmp_path: Path) -> None:
    repo = GitRepo.clone(str(bare_remote), tmp_path / "w")
    assert repo.current_branch() == "main"
    local = commit_files(repo.path, "main", {"local.md": "unpushed\n"}, "local only")  # local main ahead of origin
    assert repo.base_sha("main") != local and repo.base_sha("refs/heads/main") == local
    sha = repo.write_branch(make_change_set("cs", cpu_edit()), "refs/heads/main")
    assert git("rev-list", "--parents", "-n", "1", sha, cwd=repo.path).split()[1:] == [local]
    git("checkout", "--quiet", "--detach", cwd=repo.path)
    with pytest.raises(ProviderError, match="HEAD is detached"):
        repo.current_branch()
    with pytest.raises(ProviderError, match="base ref 'refs/heads/nope' does not exist"):
        repo.base_sha("refs/heads/nope")


def test_locks_left_by_a_killed_git_are_cleared_when_the_clone_is_reopened(bare_remote: Path, tmp_path: Path) -> None:
    """A SIGKILL mid-fetch left refs/remotes/origin/main.lock: every later fetch failed ("Unable to
    create ... .lock: File exists") and the policy never ran again (found by the crash e2e test)."""
    url = f"file://{bare_remote}"
    repo = GitRepo.open_or_clone(url, tmp_path / "clone")
    gitdir = tmp_path / "clone" / ".git"
    for lock in ("refs/remotes/origin/main.lock", "index.lock", "packed-refs.lock"):
        (gitdir / lock).write_text("")
    commit_files(bare_remote, "main", {"README.md": "moved\n"}, "move main")
    reopened = GitRepo.open_or_clone(url, tmp_path / "clone")
    assert not list(gitdir.rglob("*.lock"))
    assert reopened.rev_parse("refs/remotes/origin/main") == ref_sha(bare_remote, "refs/heads/main")
    assert repo.path == reopened.path
