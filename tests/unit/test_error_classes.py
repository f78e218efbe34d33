"""Errors get their class (permanent or transient) where they are raised, from what the source answered."""
from __future__ import annotations

import subprocess

import pytest
from github import GithubException

from finops_operator.actuation import github
from finops_operator.actuation.git import GitRepo
from finops_operator.errors import ProviderError, ProviderRefused


@pytest.mark.parametrize("status, message, expected", [
    (401, "Bad credentials", ProviderRefused),
    (403, "Resource not accessible by integration", ProviderRefused),
    (403, "API rate limit exceeded for installation", ProviderError),
    (404, "Not Found", ProviderRefused),
    (422, "Validation Failed", ProviderRefused),
    (429, "secondary rate limit", ProviderError),
    (502, "Bad Gateway", ProviderError),
])
def test_github_status_decides_the_class(status, message, expected):
    assert github._github_error_class(GithubException(status, {"message": message}, {})) is expected


def test_git_refusal_is_permanent_and_an_unreachable_remote_is_not(tmp_path):
    repo = tmp_path / "work"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    git = GitRepo(repo)
    with pytest.raises(ProviderRefused):
        git._run(["ls-remote", str(tmp_path / "no-such-repo")])
    with pytest.raises(ProviderError) as err:
        git._run(["no-such-subcommand"])
    assert not err.value.permanent
