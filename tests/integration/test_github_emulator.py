"""The emulator itself is strict: it rejects what GitHub rejects (raw HTTP, no PyGithub in between)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.fixtures_git import commit_files, git, ref_sha
from tests.support.github_emulator import GitHubEmulator

pytestmark = pytest.mark.integration


class Client:
    def __init__(self, emu: GitHubEmulator, token: str | None = None, scheme: str = "token"):
        self.emu = emu
        self.s = requests.Session()
        self.s.headers["User-Agent"] = "emulator-test"
        if token:
            self.s.headers["Authorization"] = f"{scheme} {token}"

    def __call__(self, method: str, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.s.request(method, self.emu.api_url + path, json=json, timeout=10, **kw)


def branch(emu: GitHubEmulator, name: str, content: str = "x\n") -> str:
    return commit_files(emu.bare, name, {f"{name}.txt": content}, name, parent=ref_sha(emu.bare, "refs/heads/main"))


def test_authentication_and_headers(github: GitHubEmulator) -> None:
    r = Client(github)("GET", "/repos/acme/gitops")
    assert r.status_code == 401 and r.json()["message"] == "Requires authentication"
    r = Client(github, "ghp_wrong")("GET", "/repos/acme/gitops")
    assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
    r = Client(github, github.token, "Bearer")("GET", "/repos/acme/gitops")
    assert r.status_code == 200 and r.json()["full_name"] == "acme/gitops"
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(r.headers)
    no_agent = requests.get(github.api_url + "/repos/acme/gitops", timeout=10,
                            headers={"Authorization": f"token {github.token}", "User-Agent": ""})
    assert no_agent.status_code == 403 and "User-Agent" in no_agent.json()["message"]
    assert Client(github, github.token)("GET", "/repos/acme/other").status_code == 404


def test_unknown_routes_are_404_and_recorded(github: GitHubEmulator) -> None:
    r = Client(github, github.token)("GET", "/repos/acme/gitops/pulls/1/comments")
    assert r.status_code == 404 and github.unhandled == ["GET /repos/acme/gitops/pulls/1/comments"]
    github.unhandled.clear()


def test_create_pull_validation(github: GitHubEmulator) -> None:
    c = Client(github, github.token)
    branch(github, "finops/a")

    def errors(r: requests.Response) -> list[dict]:
        assert r.status_code == 422, r.text
        return r.json()["errors"]
    assert errors(c("POST", "/repos/acme/gitops/pulls", {"head": "finops/a", "base": "main"})) == [
        {"resource": "PullRequest", "field": "title", "code": "missing_field"}]
    assert errors(c("POST", "/repos/acme/gitops/pulls", {"title": "t", "head": "nope", "base": "main"}))[0][
        "field"] == "head"
    assert errors(c("POST", "/repos/acme/gitops/pulls", {"title": "t", "head": "main", "base": "main"}))[0][
        "message"] == "No commits between main and main"
    ok = c("POST", "/repos/acme/gitops/pulls", {"title": "t", "head": "acme:finops/a", "base": "main"})
    assert ok.status_code == 201 and ok.json()["head"]["sha"] == ref_sha(github.bare, "refs/heads/finops/a")
    assert errors(c("POST", "/repos/acme/gitops/pulls", {"title": "t", "head": "finops/a", "base": "main"}))[0][
        "message"] == "A pull request already exists for acme:finops/a."
    bad = c("POST", "/repos/acme/gitops/pulls", data=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["message"] == "Problems parsing JSON"
    ro = Client(github, github.readonly_token)("POST", "/repos/acme/gitops/pulls",
                                               {"title": "t", "head": "finops/a", "base": "main"})
    assert ro.status_code == 403 and ro.headers["X-Accepted-GitHub-Permissions"] == "pull_requests=write"


def test_review_requests_and_reviews_are_strict_as_on_github(github: GitHubEmulator) -> None:
    c = Client(github, github.token)
    branch(github, "finops/r")
    number = c("POST", "/repos/acme/gitops/pulls", {"title": "t", "head": "finops/r", "base": "main"}).json()["number"]
    url = f"/repos/acme/gitops/pulls/{number}"
    assert c("POST", f"{url}/requested_reviewers", {"reviewers": []}).status_code == 422
    assert c("POST", f"{url}/requested_reviewers", {"reviewers": ["mallory"]}).status_code == 422
    assert c("POST", f"{url}/requested_reviewers", {"reviewers": ["finops-bot"]}).status_code == 422   # the author
    assert c("POST", f"{url}/requested_reviewers", {"reviewers": ["alice", "bob"]}).status_code == 201
    github.review(number, "alice")
    assert [u["login"] for u in c("GET", f"{url}/requested_reviewers").json()["users"]] == ["bob"]
    [review] = c("GET", f"{url}/reviews").json()
    assert review["user"]["login"] == "alice" and review["state"] == "APPROVED"
    github.close(number)
    assert c("POST", f"{url}/requested_reviewers", {"reviewers": ["bob"]}).status_code == 422


def test_list_filters_and_pagination(github: GitHubEmulator) -> None:
    c = Client(github, github.token)
    for name in ("finops/a", "finops/b", "finops/c"):
        branch(github, name)
        assert c("POST", "/repos/acme/gitops/pulls", {"title": name, "head": name, "base": "main"}).ok
    page1 = c("GET", "/repos/acme/gitops/pulls", params={"per_page": 2})
    assert [p["number"] for p in page1.json()] == [3, 2] and 'rel="next"' in page1.headers["Link"]
    page2 = requests.get(page1.links["next"]["url"], headers=c.s.headers, timeout=10)
    assert [p["number"] for p in page2.json()] == [1] and "merged" not in page2.json()[0]  # pull-request-simple
    by_head = c("GET", "/repos/acme/gitops/pulls", params={"head": "acme:finops/b"}).json()
    assert [p["number"] for p in by_head] == [2]
    ignored = c("GET", "/repos/acme/gitops/pulls", params={"head": "finops/b"}).json()  # not user:ref -> ignored
    assert len(ignored) == 3


def test_reopen_rules_and_deleted_branch_closes(github: GitHubEmulator) -> None:
    c = Client(github, github.token)
    branch(github, "finops/a")
    branch(github, "finops/b")
    for name in ("finops/a", "finops/b"):
        c("POST", "/repos/acme/gitops/pulls", {"title": name, "head": name, "base": "main"})
    github.close(1)
    assert c("PATCH", "/repos/acme/gitops/pulls/1", {"state": "open"}).json()["state"] == "open"
    github.close(1)
    branch(github, "finops/a", "force-pushed\n")  # recreated while closed
    r = c("PATCH", "/repos/acme/gitops/pulls/1", {"state": "open"})
    assert r.status_code == 422 and "force-pushed or recreated" in r.json()["errors"][0]["message"]
    git("update-ref", "-d", "refs/heads/finops/b", cwd=github.bare)
    assert c("GET", "/repos/acme/gitops/pulls/2").json()["state"] == "closed"


def test_merge_is_a_real_merge_commit(github: GitHubEmulator) -> None:
    c = Client(github, github.token)
    head = branch(github, "finops/a")
    c("POST", "/repos/acme/gitops/pulls", {"title": "t", "head": "finops/a", "base": "main", "draft": True})
    with pytest.raises(AssertionError, match="draft=True"):
        github.merge(1)
    github.mark_ready(1)
    old_main = ref_sha(github.bare, "refs/heads/main")
    sha = github.merge(1)
    assert git("rev-list", "--parents", "-n", "1", sha, cwd=github.bare).split()[1:] == [old_main, head]
    pr = c("GET", "/repos/acme/gitops/pulls/1").json()
    assert pr["merged"] and pr["merge_commit_sha"] == sha and pr["state"] == "closed" and pr["merged_at"]


def test_git_smart_http_requires_the_token(github: GitHubEmulator, tmp_path: Path) -> None:
    anon = git("clone", "--quiet", github.git_http_url, str(tmp_path / "anon"), check=False,
               env={"GIT_ASKPASS": "", "GIT_TERMINAL_PROMPT": "0"})
    assert not (tmp_path / "anon" / "README.md").exists() and anon == ""
    from finops_operator.actuation.git import GitRepo
    repo = GitRepo.clone(github.git_http_url, tmp_path / "authed", token=github.token)
    assert (repo.path / "README.md").exists()
