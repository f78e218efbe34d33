"""The whole loop when a real part fails: each ends with a clear error, no half-made PR, and recovers.

Same world as ``test_full_loop.py`` (demo scenario in a real Prometheus, moto,
GitHub emulator over examples/gitops). Failures are real: a closed port, a
server that never answers, moto behind a proxy that throttles, the emulator's
fault injection and a human pushing to the base branch between scan and push.
"""
from __future__ import annotations

import time

import pytest
from finops_operator.ledger import OpportunityState as S
from finops_operator.sources.prometheus import PrometheusSource

from tests.support.fixtures_git import commit_files, git, read_blob
from tests.support.github_emulator import _Fault
from tests.support.loop import utcnow

pytestmark = pytest.mark.integration
PULLS = r"/repos/acme/gitops/pulls"
CHANGE_SETS = {"rightsize-payments", "rightsize-search", "rightsize-analytics", "orphan-volumes"}


def finops_branches(loop) -> list[str]:
    return git("for-each-ref", "--format=%(refname:short)", "refs/heads/finops", cwd=loop.bare).split()


def assert_nothing_made(loop, report) -> None:
    assert report.result is None and loop.ledger.opportunities == []
    assert loop.github.pulls() == [] and finops_branches(loop) == []


def assert_recovered(loop, report) -> None:
    """Every change set has exactly one open PR and the ledger points at it."""
    assert report.errors == {}, report.errors
    pulls = loop.github.pulls()
    assert sorted(p["head"]["ref"] for p in pulls) == sorted(f"finops/{cs}" for cs in CHANGE_SETS)
    urls = {p["html_url"] for p in pulls}
    proposed = [o for o in loop.ledger.opportunities if o.state == S.PROPOSED]
    assert proposed and {o.pr_url for o in proposed} == urls


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_down_gives_a_stage_error_and_nothing_else(loop, down_prometheus_url) -> None:
    reader = loop.reader(PrometheusSource(down_prometheus_url, retries=2, backoff=0.01, timeout=2))
    report = loop.run(utcnow(), deps=loop.deps(reader=reader))
    message = report.errors["inventory"]
    assert down_prometheus_url in message and "cannot connect" in message and "after 2 attempts" in message
    assert set(report.errors) == {"inventory"}
    assert_nothing_made(loop, report)


def test_prometheus_that_never_answers_times_out_cleanly(loop, silent_prometheus) -> None:
    reader = loop.reader(PrometheusSource(silent_prometheus.url, retries=2, backoff=0.01, timeout=1))
    began = time.monotonic()
    report = loop.run(utcnow(), deps=loop.deps(reader=reader))
    assert time.monotonic() - began < 20, "a hung Prometheus must not hang the run"
    message = report.errors["inventory"]
    assert silent_prometheus.url in message and "timeout" in message and silent_prometheus.accepted >= 1
    assert_nothing_made(loop, report)
    # the server comes back (the real one): the next run works
    assert_recovered(loop, loop.run(utcnow()))


# --------------------------------------------------------------------------- AWS


def test_aws_throttling_is_retried(loop, aws_endpoint) -> None:
    aws_endpoint.throttle("DescribeVolumes", 2)
    aws = loop.aws(max_attempts=4)
    report = loop.run(utcnow(), deps=loop.deps(reader=loop.reader(aws=aws)))
    assert aws.retries == 2 and aws_endpoint.count("DescribeVolumes") == 3
    assert any(str(f.target) == f"volume/{loop.volume_ids['legacy-reports']}" for f in report.result.findings)
    assert_recovered(loop, report)


def test_aws_throttling_that_persists_is_a_clear_error(loop, aws_endpoint) -> None:
    aws_endpoint.throttle("DescribeVolumes", 100)
    report = loop.run(utcnow(), deps=loop.deps(reader=loop.reader(aws=loop.aws(max_attempts=3))))
    message = report.errors["inventory"]
    assert "throttled by AWS (RequestLimitExceeded" in message and "after 3 attempts" in message
    assert "DescribeVolumes" in message or "describe_volumes" in message
    assert_nothing_made(loop, report)     # no volume data -> no findings at all, nothing superseded
    aws_endpoint.throttle("DescribeVolumes", 0)
    assert_recovered(loop, loop.run(utcnow()))


# --------------------------------------------------------------------------- GitHub


def test_github_401_makes_nothing_and_the_next_run_recovers(loop) -> None:
    bad = "ghp_" + "x" * 36
    report = loop.run(utcnow(), deps=loop.deps(provider=loop.provider(token=bad)))
    assert set(report.errors) == {f"publish/{cs}" for cs in CHANGE_SETS}
    assert all("GitHub token invalid or expired (401" in m and bad not in m for m in report.errors.values())
    assert loop.github.pulls() == [] and finops_branches(loop) == []
    assert not [o for o in loop.ledger.opportunities if o.state == S.PROPOSED]
    assert_recovered(loop, loop.run(utcnow()))


def test_github_403_pushes_but_opens_no_pr_and_the_next_run_opens_each_once(loop) -> None:
    token = loop.github.readonly_token
    report = loop.run(utcnow(), deps=loop.deps(provider=loop.provider(token=token)))
    assert set(report.errors) == {f"publish/{cs}" for cs in CHANGE_SETS}
    assert all("lacks permission" in m and token not in m for m in report.errors.values())
    assert loop.github.pulls() == []
    assert_recovered(loop, loop.run(utcnow()))
    assert loop.github.calls("POST", PULLS) == 2 * len(CHANGE_SETS)


def test_github_422_fails_one_change_set_only(loop) -> None:
    # What GitHub answers when, e.g., a repository ruleset refuses the PR (the emulator answers the message).
    loop.github._faults.append(_Fault(422, False, {}, {"message": "Validation Failed"}, f"POST {PULLS}"))
    report = loop.run(utcnow())
    [(stage, message)] = report.errors.items()
    assert stage.startswith("publish/") and "GitHub rejected the request to create the pull request" in message
    assert "(422 Validation Failed)" in message
    assert len(loop.github.pulls()) == len(CHANGE_SETS) - 1
    assert_recovered(loop, loop.run(utcnow()))


@pytest.mark.parametrize("after", [False, True], ids=["before-write", "after-write"])
def test_github_5xx_is_retried_without_a_duplicate(loop, after: bool) -> None:
    loop.github.fail_next(2, 502, after=after, match=f"POST {PULLS}")
    assert_recovered(loop, loop.run(utcnow()))
    assert len(loop.github.pulls()) == len(CHANGE_SETS)


def test_github_down_for_the_whole_run_then_recovers(loop) -> None:
    loop.github.fail_next(1000, 503)
    report = loop.run(utcnow())
    assert set(report.errors) == {f"publish/{cs}" for cs in CHANGE_SETS}
    assert all("kept failing" in m or "server error 503" in m for m in report.errors.values()), report.errors
    loop.github._faults.clear()
    assert loop.github.pulls() == []
    assert_recovered(loop, loop.run(utcnow()))


# --------------------------------------------------------------------------- git


def test_base_moved_between_scan_and_push_then_rebuilt_on_the_new_base(loop) -> None:
    path = "apps/payments/deployments.yaml"

    def checkout_then_human_pushes(base: str):
        tree = loop.checkout(base)
        text = read_blob(loop.bare, "refs/heads/main", path)
        commit_files(loop.bare, "main", {path: "# reviewed by payments on-call\n" + text}, "payments: note")
        return tree

    report = loop.run(utcnow(), deps=loop.deps(checkout=checkout_then_human_pushes))
    assert set(report.errors) == {"publish/rightsize-payments"}
    assert "base moved" in report.errors["publish/rightsize-payments"] and path in report.errors[
        "publish/rightsize-payments"]
    assert "finops/rightsize-payments" not in finops_branches(loop)
    assert len(loop.github.pulls()) == len(CHANGE_SETS) - 1
    assert_recovered(loop, loop.run(utcnow()))
    main = git("rev-parse", "main", cwd=loop.bare)
    assert git("merge-base", "main", "finops/rightsize-payments", cwd=loop.bare) == main
    edited = read_blob(loop.bare, "refs/heads/finops/rightsize-payments", path)
    assert edited.startswith("# reviewed by payments on-call\n") and 'cpu: "1000m"' not in edited
