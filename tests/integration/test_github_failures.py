"""GitHub failure modes through PyGithub: 401/403/422/5xx, rate limits, partial failures, token hygiene."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from finops_operator.actuation.github import GitHubProvider
from finops_operator.errors import ProviderError

from tests.support.fixtures_git import cpu_edit, make_change_set, ref_sha
from tests.support.github_emulator import GitHubEmulator

pytestmark = pytest.mark.integration
PULLS = r"/repos/acme/gitops/pulls"
BRANCH = "refs/heads/finops/rightsize-payments"


@pytest.fixture
def make_provider(github: GitHubEmulator, tmp_path: Path) -> Callable[..., GitHubProvider]:
    made = []

    def make(**kw: Any) -> GitHubProvider:
        opts: dict[str, Any] = {"api_url": github.api_url, "git_url": github.git_url, "retries": 3,
                                "backoff_factor": 0.01, "secondary_rate_wait": 0.2, "max_rate_limit_wait": 5,
                                "seconds_between_requests": None, "seconds_between_writes": None,
                                "workdir": tmp_path / f"work{len(made)}"}
        opts.update(kw)
        made.append(1)
        return GitHubProvider("acme/gitops", opts.pop("token", github.token), **opts)
    return make


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # PyGithub's request log and urllib3's retry log included
    return caplog


def publish(prov: GitHubProvider, **kw: Any):
    cs = make_change_set("rightsize-payments", cpu_edit("400m"), body=kw.pop("body", "Right-size.\n"),
                         title=kw.pop("title", None))
    args: dict[str, Any] = {"base_branch": "main", "labels": ["finops"], "reviewers": ["alice"], "draft": False}
    args.update(kw)
    return prov.publish(cs, **args)


def assert_clean(text: str, *tokens: str) -> None:
    for tok in tokens:
        assert tok not in text, "token leaked"


def test_401_bad_token_is_clear_and_makes_nothing(github: GitHubEmulator, make_provider, logs) -> None:
    bad = "ghp_" + "x" * 36
    with pytest.raises(ProviderError) as err:
        publish(make_provider(token=bad))
    msg = str(err.value)
    assert "GitHub token invalid or expired (401 Bad credentials)" in msg and "contents:write" in msg
    assert_clean(msg + logs.text, bad, github.token)
    assert github.pulls() == [] and ref_sha(github.bare, BRANCH) is None


def test_403_read_only_token_then_next_run_completes(github: GitHubEmulator, make_provider, logs) -> None:
    with pytest.raises(ProviderError) as err:
        publish(make_provider(token=github.readonly_token))
    msg = str(err.value)
    assert "lacks permission to create the pull request" in msg and "missing permission: pull_requests=write" in msg
    assert_clean(msg + logs.text, github.readonly_token, github.token)
    assert github.pulls() == []  # no PR; the pushed branch is picked up by the next run
    ref = publish(make_provider())
    assert ref.created and len(github.pulls()) == 1 and github.calls("POST", PULLS) == 2


def test_422_is_reported_with_githubs_text(github: GitHubEmulator, make_provider) -> None:
    with pytest.raises(ProviderError) as err:       # a body the renderer would never produce: GitHub says 422
        publish(make_provider(), body="b" * 70_000)
    assert "GitHub rejected the request to create the pull request" in str(err.value)
    assert "body is too long (maximum is 65536 characters)" in str(err.value)
    assert github.pulls() == []


def test_reviewer_rejected_is_a_note_not_a_failure(github: GitHubEmulator, make_provider) -> None:
    ref = publish(make_provider(), reviewers=["mallory"])
    assert ref.created and len(ref.notes) == 1 and "not a collaborator" in ref.notes[0]
    assert github.pulls()[0]["requested_reviewers"] == []


def test_5xx_is_retried_then_succeeds(github: GitHubEmulator, make_provider) -> None:
    github.fail_next(2, 502, match=f"POST {PULLS}")
    github.fail_next(1, 500, match=r"GET /repos/acme/gitops")
    ref = publish(make_provider())
    assert ref.created and len(github.pulls()) == 1
    assert [s for m, p, s in github.requests if m == "POST" and p == "/repos/acme/gitops/pulls"] == [502, 502, 201]


def test_persistent_5xx_is_a_provider_error_and_next_run_recovers(github: GitHubEmulator, make_provider) -> None:
    github.fail_next(10, 500, match=f"POST {PULLS}")
    with pytest.raises(ProviderError, match="GitHub kept failing while trying to create the pull request .* after "
                                            "3 retries"):
        publish(make_provider())
    assert github.pulls() == [] and ref_sha(github.bare, BRANCH) is not None
    github._faults.clear()
    ref = publish(make_provider())
    assert ref.created and len(github.pulls()) == 1


def test_write_that_succeeded_behind_a_502_makes_no_duplicate(github: GitHubEmulator, make_provider) -> None:
    github.fail_next(1, 502, after=True, match=f"POST {PULLS}")  # PR made, client sees 502 and retries
    ref = publish(make_provider())
    assert len(github.pulls()) == 1 and ref.number == 1 and not ref.created
    assert [lb["name"] for lb in github.pulls()[0]["labels"]] == ["finops"]


def test_labels_failing_after_creation_are_added_next_run(github: GitHubEmulator, make_provider) -> None:
    github.fail_next(10, 500, match=r"POST /repos/acme/gitops/issues/\d+/labels")
    ref = publish(make_provider())
    assert ref.created and ref.notes and "labels ['finops'] not added yet" in ref.notes[0]
    assert github.pulls()[0]["labels"] == []
    github._faults.clear()
    again = publish(make_provider())
    assert again.number == ref.number and not again.notes
    assert [lb["name"] for lb in github.pulls()[0]["labels"]] == ["finops"] and len(github.pulls()) == 1


def test_secondary_rate_limit_is_waited_out(github: GitHubEmulator, make_provider) -> None:
    github.rate_limit_next(1, kind="secondary", retry_after=1, match=f"POST {PULLS}")
    ref = publish(make_provider())
    assert ref.created
    assert [s for m, p, s in github.requests if m == "POST" and p == "/repos/acme/gitops/pulls"] == [403, 201]


def test_primary_rate_limit_beyond_max_wait_says_until_when(github: GitHubEmulator, make_provider, logs) -> None:
    github.rate_limit_next(1, kind="primary", reset_in=3600, match=r"GET /repos/acme/gitops/pulls")
    with pytest.raises(ProviderError) as err:
        make_provider().open_count()
    msg = str(err.value)
    assert "GitHub rate limit hit while trying to list open pull requests" in msg and "Rate limited until 20" in msg
    assert "UTC" in msg
    assert_clean(msg + logs.text, github.token)


def test_unknown_repo_is_404_with_fix(github: GitHubEmulator, make_provider) -> None:
    prov = make_provider()
    prov.repo_name = "acme/nope"
    with pytest.raises(ProviderError, match="repository acme/nope not found, or the token cannot see it"):
        prov.open_count()


def test_unreachable_api_is_clear(make_provider, logs) -> None:
    prov = make_provider(api_url="http://127.0.0.1:9", retries=1)
    with pytest.raises(ProviderError, match=r"http://127.0.0.1:9"):
        prov.open_count()


def test_token_never_reaches_pr_text_or_logs(github: GitHubEmulator, make_provider, logs) -> None:
    ref = publish(make_provider(), body=f"debug dump: token={github.token}\n")
    pr = github.pulls()[0]
    assert_clean(pr["body"] + pr["title"] + logs.text + repr(ref), github.token)
    assert "***" in pr["body"]


def test_no_token_is_a_config_error(github: GitHubEmulator, tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="no GitHub token"):
        GitHubProvider("acme/gitops", "", workdir=tmp_path, api_url=github.api_url)
