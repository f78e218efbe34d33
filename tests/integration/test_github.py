"""GitHubProvider through PyGithub against the loopback emulator backed by a real bare remote."""
from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from finops_operator.actuation.github import GitHubProvider, default_git_url
from finops_operator.actuation.providers import Provider, parse_marker
from finops_operator.errors import ProviderError

from tests.support.fixtures_git import GITOPS_TREE, commit_files, cpu_edit, git, make_change_set, ref_sha
from tests.support.github_emulator import GitHubEmulator

pytestmark = pytest.mark.integration
DEPLOY = "apps/payments/deployment.yaml"
PULLS = r"/repos/acme/gitops/pulls"


@pytest.fixture
def make_provider(github: GitHubEmulator, tmp_path: Path) -> Callable[..., GitHubProvider]:
    counter = itertools.count()

    def make(**kw: Any) -> GitHubProvider:
        opts: dict[str, Any] = {"api_url": github.api_url, "git_url": github.git_url, "retries": 3,
                                "backoff_factor": 0.01, "secondary_rate_wait": 0.2, "max_rate_limit_wait": 5,
                                "seconds_between_requests": None, "seconds_between_writes": None,
                                "workdir": tmp_path / f"work{next(counter)}"}
        opts.update(kw)
        return GitHubProvider("acme/gitops", opts.pop("token", github.token), **opts)
    return make


def publish(prov: GitHubProvider, cs_id: str = "rightsize-payments", cpu: str = "400m", **kw: Any):
    edits = kw.pop("edits", None) or cpu_edit(cpu)
    cs = make_change_set(cs_id, edits, cpu_after=cpu, body=kw.pop("body", f"Right-size to {cpu}.\n"),
                         title=kw.pop("title", None), savings=kw.pop("savings", 42.0))
    args: dict[str, Any] = {"base_branch": "main", "labels": ["finops", "cost"], "reviewers": ["alice"],
                            "draft": False}
    args.update(kw)
    return prov.publish(cs, **args)


def test_first_publish_opens_pr_with_labels_reviewers_draft(github: GitHubEmulator, make_provider) -> None:
    prov = make_provider(commit_message=lambda cs: f"finops: {cs.id} ({len(cs.findings)} finding)\n")
    assert isinstance(prov, Provider) and prov.status("finops/rightsize-payments") is None
    ref = publish(prov, draft=True)
    assert git("log", "-1", "--format=%s", ref.head_sha, cwd=github.bare) == "finops: rightsize-payments (1 finding)"
    assert ref.created and ref.state == "open" and ref.number == 1 and not ref.notes
    [pr] = github.pulls()
    # the PR title is render_title(): what the diff does and what it saves, prefixed once
    assert pr["title"] == "finops: Right-size CPU of 1 workload (saves $42.00/month)" and pr["draft"] is True
    assert pr["head"]["ref"] == "finops/rightsize-payments" and pr["base"]["ref"] == "main"
    assert [lb["name"] for lb in pr["labels"]] == ["finops", "cost"]
    assert [u["login"] for u in pr["requested_reviewers"]] == ["alice"]
    assert pr["body"].startswith("Right-size to 400m.") and parse_marker(pr["body"])[0] == "rightsize-payments"
    assert pr["head"]["sha"] == ref.head_sha == ref_sha(github.bare, "refs/heads/finops/rightsize-payments")
    assert pr["commits"] == 1 and pr["changed_files"] == 1
    assert ref.url == pr["html_url"] and ref.fingerprint == parse_marker(pr["body"])[1]
    assert prov.open_count() == 1


def test_second_publish_updates_instead_of_duplicating(github: GitHubEmulator, make_provider) -> None:
    first = publish(make_provider())
    again = publish(make_provider())  # a new process: fresh clone, no memory of the first run
    assert again.number == first.number and not again.created and again.head_sha == first.head_sha
    assert github.calls("POST", PULLS) == 1 and github.calls("PATCH", PULLS + r"/\d+") == 0
    changed = publish(make_provider(), cpu="300m", savings=55.0)
    assert changed.number == first.number and changed.head_sha != first.head_sha
    [pr] = github.pulls()
    assert pr["head"]["sha"] == changed.head_sha and "cpu: 300m" in git(
        "show", f"{changed.head_sha}:{DEPLOY}", cwd=github.bare)
    assert pr["title"] == "finops: Right-size CPU of 1 workload (saves $55.00/month)"
    assert pr["body"].startswith("Right-size to 300m.")
    assert changed.fingerprint != first.fingerprint and pr["commits"] == 1  # force-pushed, not stacked
    assert github.calls("POST", PULLS) == 1 and github.calls("PATCH", PULLS + r"/\d+") == 1


def test_human_closed_pr_is_not_reopened_unless_recommendation_changed(github: GitHubEmulator,
                                                                       make_provider) -> None:
    prov = make_provider()
    first = publish(prov)
    github.close(first.number)
    head = ref_sha(github.bare, "refs/heads/finops/rightsize-payments")
    same = publish(prov)
    assert same.state == "closed" and same.number == first.number and "not reopened" in same.reason
    assert len(github.pulls()) == 1 and ref_sha(github.bare, "refs/heads/finops/rightsize-payments") == head
    nudged = publish(make_provider(), cpu="380m", savings=45.0)      # other values, savings within 20%: not material
    assert nudged.state == "closed" and len(github.pulls()) == 1 and "not reopened" in nudged.reason
    changed = publish(prov, cpu="300m", savings=60.0)
    assert changed.created and changed.number == 2 and changed.state == "open"
    pulls = github.pulls()
    assert [p["state"] for p in pulls] == ["closed", "open"]
    assert "Previously proposed in #1, which was closed." in pulls[1]["body"]
    assert parse_marker(pulls[1]["body"])[1] == changed.fingerprint != first.fingerprint


def test_merge_is_seen_with_merged_at(github: GitHubEmulator, make_provider) -> None:
    prov = make_provider()
    ref = publish(prov)
    merge_sha = github.merge(ref.number)
    st = prov.status(ref.branch)
    assert st.state == "merged" and st.merged_at == github.pr(ref.number).merged_at
    assert st.merged_at.tzinfo is not None and st.head_sha == ref.head_sha
    assert ref_sha(github.bare, "refs/heads/main") == merge_sha
    assert "cpu: 400m" in git("show", f"main:{DEPLOY}", cwd=github.bare)
    assert git("rev-list", "--parents", "-n", "1", "main", cwd=github.bare).split()[2] == ref.head_sha
    assert prov.open_count() == 0
    again = publish(prov, edits={DEPLOY: (cpu_edit("400m")[DEPLOY][1], "x\n")})  # same findings, post-merge tree
    assert again.state == "merged" and "already merged" in again.reason and len(github.pulls()) == 1


def test_stale_pr_is_rebased_on_new_base_tip(github: GitHubEmulator, make_provider) -> None:
    prov = make_provider()
    first = publish(prov)
    new_main = commit_files(github.bare, "main", {"docs/runbook.md": "# runbook\n"}, "unrelated change")
    again = publish(prov)
    assert again.number == first.number and again.head_sha != first.head_sha
    assert git("rev-list", "--parents", "-n", "1", again.head_sha, cwd=github.bare).split()[1:] == [new_main]
    assert github.pulls()[0]["head"]["sha"] == again.head_sha and len(github.pulls()) == 1


def test_base_moved_on_edited_file_is_clear_and_changes_nothing(github: GitHubEmulator, make_provider) -> None:
    prov = make_provider()
    first = publish(prov)
    def view() -> list[tuple]:
        return [(p["title"], p["body"], p["head"]["sha"], p["updated_at"], p["state"]) for p in github.pulls()]
    before = view()
    commit_files(github.bare, "main", {DEPLOY: GITOPS_TREE[DEPLOY].replace("replicas: 3", "replicas: 4")}, "human")
    with pytest.raises(ProviderError, match=f"base moved: {DEPLOY} changed since the scan"):
        publish(prov, cpu="300m")
    assert view() == before and ref_sha(github.bare, "refs/heads/finops/rightsize-payments") == first.head_sha
    with pytest.raises(ProviderError, match="base moved"):
        publish(prov, cs_id="other", cpu="300m")
    assert ref_sha(github.bare, "refs/heads/finops/other") is None and len(github.pulls()) == 1


def test_pr_found_by_marker_on_another_branch_is_updated(github: GitHubEmulator, make_provider) -> None:
    from github import Auth, Github
    commit_files(github.bare, "finops/legacy", {"x.md": "x\n"}, "legacy", parent=ref_sha(github.bare, "refs/heads/main"))
    gh = Github(auth=Auth.Token(github.token), base_url=github.api_url)
    gh.get_repo("acme/gitops").create_pull(base="main", head="finops/legacy", title="old",
                                           body="<!-- finops-operator:changeset=rightsize-payments fingerprint=0 -->")
    ref = publish(make_provider())
    assert ref.number == 1 and not ref.created and len(github.pulls()) == 1
    assert github.pulls()[0]["head"]["sha"] == ref_sha(github.bare, "refs/heads/finops/legacy") == ref.head_sha
    assert ref_sha(github.bare, "refs/heads/finops/rightsize-payments") is None


def test_hourly_limit_defers_until_an_hour_passed(github: GitHubEmulator, make_provider) -> None:
    now = [datetime.now(UTC)]
    prov = make_provider(max_prs_per_hour=2, clock=lambda: now[0])
    for cs_id in ("a", "b"):
        assert publish(prov, cs_id=cs_id, edits={f"notes/{cs_id}.md": (None, cs_id)}).created
    ref = publish(prov, cs_id="c", edits={"notes/c.md": (None, "c")})
    assert ref.state == "deferred" and "hourly PR limit reached: 2 finops PRs opened in the last hour" in ref.reason
    assert "next slot at" in ref.reason and ref_sha(github.bare, "refs/heads/finops/c") is None
    assert publish(prov, cs_id="a", edits={"notes/a.md": (None, "a2")}).state == "open"  # updates are not limited
    now[0] += timedelta(minutes=61)
    assert publish(prov, cs_id="c", edits={"notes/c.md": (None, "c")}).created


def test_git_over_https_with_token(github: GitHubEmulator, make_provider, tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    ref = publish(make_provider(git_url=github.git_http_url))
    assert ref.created and ref_sha(github.bare, "refs/heads/finops/rightsize-payments") == ref.head_sha
    with pytest.raises(ProviderError, match="git push failed") as err:  # read-only token: fetch ok, push 403
        publish(make_provider(git_url=github.git_http_url, token=github.readonly_token), cs_id="ro")
    assert github.readonly_token not in str(err.value) + caplog.text
    assert github.token not in caplog.text
    assert default_git_url("https://api.github.com", "a/b") == "https://github.com/a/b.git"
    assert default_git_url("https://ghe.corp/api/v3", "a/b") == "https://ghe.corp/a/b.git"


class Killed(BaseException):
    """The operator process dying mid-publish (not an Exception: nothing may catch it)."""


def test_a_kill_before_reviewers_are_requested_is_completed_by_the_next_run(github: GitHubEmulator, make_provider,
                                                                            monkeypatch) -> None:
    """Issue 7 #12: updates re-added labels but never reviewers (11 of 22 crash runs)."""
    real = GitHubProvider._ensure_reviewers

    def die_when_opening(self, pr, reviewers, *, new=False):
        if new:
            raise Killed()
        return real(self, pr, reviewers, new=new)
    monkeypatch.setattr(GitHubProvider, "_ensure_reviewers", die_when_opening)
    with pytest.raises(Killed):
        publish(make_provider())
    [pr] = github.pulls()
    assert pr["requested_reviewers"] == []
    monkeypatch.setattr(GitHubProvider, "_ensure_reviewers", real)
    ref = publish(make_provider())                       # the restarted operator's next run
    assert not ref.created and not ref.notes
    [pr] = github.pulls()
    assert [u["login"] for u in pr["requested_reviewers"]] == ["alice"]
    assert [lb["name"] for lb in pr["labels"]] == ["finops", "cost"]
    assert github.calls("POST", PULLS) == 1


def test_updates_converge_reviewers_without_asking_anyone_twice(github: GitHubEmulator, make_provider) -> None:
    first = publish(make_provider())
    github.review(first.number, "alice")                # alice reviewed: GitHub drops her from the requests
    again = publish(make_provider(), reviewers=["alice"])
    assert not again.notes and github.calls("POST", PULLS + r"/\d+/requested_reviewers") == 1
    assert github.pulls()[0]["requested_reviewers"] == []
    publish(make_provider(), reviewers=["alice", "bob"])  # the policy adds a reviewer: asked on the next update
    assert [u["login"] for u in github.pulls()[0]["requested_reviewers"]] == ["bob"]
    publish(make_provider(), reviewers=["alice", "bob"])
    assert github.calls("POST", PULLS + r"/\d+/requested_reviewers") == 2
