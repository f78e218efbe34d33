"""Crash test: SIGKILL the operator at random points of pull-request runs, at least 30 times.

Each round gives a fresh GitHub repository (the loopback emulator over a real bare repo) to a
fresh FinOpsPolicy (GitHub provider, groupBy type: two change sets, so two PRs, each with labels
and reviewers). The policy is asked to run (``finops.dev/run-now``) and ``finops run`` is killed
with SIGKILL at a random point: right after its k-th write reached GitHub (a push, the PR, its
labels, its reviewers; the kill lands while PyGithub waits between writes) or after a random
delay into the run (Prometheus queries, the kube writes of the ledger, git). It is restarted at
once and resumes the run; the next kill follows. The seed is fixed, so CI kills at the same
points every time.

After each kill: never two PRs for one branch, never a closed PR. After each round's final,
uninterrupted run: the policy is Ready; exactly one open PR per change set, none half-made (its
labels, its reviewers, its body with the change-set marker, its branch with exactly the changes the
SavingsOpportunity objects list); no branch without its PR; one SavingsOpportunity per finding,
Proposed, pointing at its PR.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from finops_operator.actuation.providers import parse_marker
from finops_operator.api.conditions import timestamp

from tests.support.fixtures_git import git, make_bare_remote
from tests.support.fixtures_operator import SHOP, OperatorProcess, seed_cluster
from tests.support.kubeget import get_json     # polled every 10-20 ms: one HTTPS GET, not a kubectl process
from tests.support.github_emulator import GitHubEmulator

pytestmark = pytest.mark.e2e
NS = "finops-crash"
SEED = 30
MIN_KILLS = 30          # kills that landed inside a run (the acceptance criterion)
KILLS_PER_ROUND = 6
MAX_ATTEMPTS = 80       # kills of any kind, in case many land after a run finished
LABELS = ["finops", "cost"]
REVIEWERS = ["alice", "bob"]
WRITES = ("POST", "PATCH", "PUT", "DELETE")


@pytest.fixture(scope="module")
def crash_world(kube, e2e_prometheus, tmp_path_factory):
    files = seed_cluster(kube, e2e_prometheus.end, NS, SHOP)
    token = GitHubEmulator(Path("/nonexistent")).token   # every emulator accepts this token
    kube.kubectl("create", "secret", "generic", "gh-token", "-n", NS, f"--from-literal=token={token}", check=False)
    tmp = tmp_path_factory.mktemp("operator-crash")
    # One pod name across restarts, as a container restarted in its pod: it takes its run Lease back at once.
    env = {**kube.environ(), "FINOPS_OPERATOR_NAMESPACE": NS, "FINOPS_TIMER_INTERVAL_SECONDS": "1",
           "FINOPS_POD_NAME": "finops-crash-0",
           "FINOPS_WORKDIR": str(tmp / "work"), "FINOPS_CLUSTER_NAME": "crash", "FINOPS_LOG_LEVEL": "INFO",
           "GIT_AUTHOR_NAME": "finops", "GIT_AUTHOR_EMAIL": "finops@example.test",
           "GIT_COMMITTER_NAME": "finops", "GIT_COMMITTER_EMAIL": "finops@example.test"}
    operator = OperatorProcess(env=env, log=tmp / "operator.log", namespace=NS)
    yield kube, files, tmp, operator
    operator.stop()


def policy(name: str, emu: GitHubEmulator, prometheus: str) -> dict[str, Any]:
    return {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
            "metadata": {"name": name, "namespace": NS, "annotations": {"finops.dev/run-now": f"{name}-0"}},
            "spec": {"schedule": "0 6 * * 1-5", "timeZone": "UTC", "mode": "PullRequest", "groupBy": "type",
                     "scope": {"namespaces": [SHOP]},
                     "dataSources": {"prometheus": {"url": prometheus, "historyWindow": "7d", "stepSeconds": 300}},
                     "guardrails": {"maxSingleChangePercent": 95},
                     "git": {"provider": "GitHub", "repository": emu.full_name, "apiUrl": emu.api_url,
                             "tokenSecretRef": {"name": "gh-token"}, "labels": LABELS, "reviewers": REVIEWERS}}}


@dataclass
class Kills:
    rng: random.Random
    inside: int = 0      # kills that landed while a run was in progress
    attempts: int = 0
    log: list[str] = field(default_factory=list)


def annotations(kube, name: str) -> dict[str, str]:
    return get_json(kube, "fpol", name, "-n", NS)["metadata"].get("annotations") or {}


def run_pending(kube, name: str) -> bool:
    notes = annotations(kube, name)
    return notes.get("finops.dev/run-now") != notes.get("finops.dev/run-now-handled")


def writes(emu: GitHubEmulator) -> int:
    return sum(1 for method, _, _ in list(emu.requests) if method in WRITES)


def kill_once(kube, operator: OperatorProcess, emu: GitHubEmulator, name: str, kills: Kills) -> None:
    """Start the operator, let the pending run begin, SIGKILL it at a random point, check no duplicate."""
    mark = len(operator.text())
    operator.start()
    started = operator.wait_for("the run to start", lambda: "running policy" in operator.text()[mark:]
                                or not run_pending(kube, name), timeout=90, interval=0.02)
    if kills.rng.random() < 0.65:
        target, how = writes(emu) + kills.rng.randint(1, 4), "write"
        done = lambda: writes(emu) >= target or not run_pending(kube, name)  # noqa: E731
    else:
        until, how = time.monotonic() + kills.rng.uniform(0.0, 6.0), "time"
        done = lambda: time.monotonic() >= until or not run_pending(kube, name)  # noqa: E731
    deadline = time.monotonic() + 60
    while started and not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    inside = run_pending(kube, name) and "running policy" in operator.text()[mark:]
    operator.kill()
    kills.attempts += 1
    kills.inside += int(inside)
    kills.log.append(
        f"{name}: kill {kills.attempts} by {how} after {writes(emu)} GitHub writes, {'inside' if inside else 'after'} "
        f"the run")
    heads = [p["head"]["ref"] for p in emu.pulls()]
    assert len(heads) == len(set(heads)), f"two PRs for one branch after kill {kills.attempts}: {heads}"
    assert all(p["state"] == "open" for p in emu.pulls()), "a PR was closed"
    if not run_pending(kube, name):
        kube.kubectl("annotate", "--overwrite", "fpol", name, "-n", NS, f"finops.dev/run-now={name}-{kills.attempts}")


def test_sigkill_during_pr_runs_leaves_no_duplicate_and_nothing_half_made(crash_world, e2e_prometheus):
    kube, files, tmp, operator = crash_world
    kills = Kills(random.Random(SEED))
    rounds, problems = 0, []
    started = time.monotonic()
    while kills.inside < MIN_KILLS:
        assert kills.attempts < MAX_ATTEMPTS, f"only {kills.inside} kills inside a run:\n" + "\n".join(kills.log)
        name = f"crash-{rounds}"
        emu = GitHubEmulator(make_bare_remote(tmp / f"github-{rounds}", files=files), "acme/gitops").start()
        try:
            kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(policy(name, emu, e2e_prometheus.url)))
            target = kills.inside + KILLS_PER_ROUND
            while kills.inside < min(target, MIN_KILLS) and kills.attempts < MAX_ATTEMPTS:
                kill_once(kube, operator, emu, name, kills)
            final_run(kube, operator, name)
            problems += round_problems(kube, emu, name)
            assert not emu.unhandled, emu.unhandled
        finally:
            operator.stop()
            emu.stop()
        kube.kubectl("delete", "fpol", name, "-n", NS, "--wait=false")
        rounds += 1
    print(f"\n{kills.inside} kills inside PR runs ({kills.attempts} in all) over {rounds} rounds in "
          f"{time.monotonic() - started:.0f}s:\n" + "\n".join(kills.log))
    assert kills.inside >= MIN_KILLS
    assert not problems, "\n".join(problems) + "\n\nkills:\n" + "\n".join(kills.log)


def final_run(kube, operator: OperatorProcess, name: str) -> None:
    """One uninterrupted run after the kills; the policy must end Ready."""
    value, since = f"{name}-final", timestamp(datetime.now(UTC) - timedelta(seconds=1))
    kube.kubectl("annotate", "--overwrite", "fpol", name, "-n", NS, f"finops.dev/run-now={value}")
    operator.start()

    def done() -> dict[str, Any] | None:
        # kopf writes the handled annotation and the status in two requests: wait for both
        body = get_json(kube, "fpol", name, "-n", NS)
        handled = (body["metadata"].get("annotations") or {}).get("finops.dev/run-now-handled") == value
        return body if handled and body.get("status", {}).get("lastRunTime", "") >= since else None

    body = operator.wait_for(f"the final run of {name}", done, timeout=180)
    ready = {c["type"]: c for c in body["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True", f"{name}: the run after the kills failed: {ready}"
    tracebacks = [ln for ln in operator.text().splitlines() if "Traceback" in ln or "failed with an exception" in ln]
    assert not tracebacks, "\n".join(tracebacks)


def round_problems(kube, emu: GitHubEmulator, name: str) -> list[str]:
    """Exactly one complete PR per change set (asserted); what is half-made (returned)."""
    opps = get_json(kube, "fsav", "-n", NS, "-l", f"finops.dev/policy={name}")["items"]
    ids = [o["metadata"]["labels"]["finops.dev/opportunity-id"] for o in opps]
    assert len(ids) == len(set(ids)) == 2, f"{name}: expected two SavingsOpportunities, got {ids}"
    pulls = emu.pulls()
    heads = [p["head"]["ref"] for p in pulls]
    assert len(heads) == len(set(heads)) == 2, f"{name}: expected two PRs, one per change set: {heads}"
    by_branch = {o["status"]["pullRequest"]["branch"]: o for o in opps}
    assert set(by_branch) == set(heads), f"{name}: SavingsOpportunity branches {sorted(by_branch)} vs PRs {heads}"
    remote = set(git("for-each-ref", "--format=%(refname:short)", "refs/heads/finops/", cwd=emu.bare).split())
    assert remote == set(heads), f"{name}: branches without a PR: {sorted(remote - set(heads))}"
    problems = []
    for pr in pulls:
        problems += pr_problems(emu, pr, by_branch[pr["head"]["ref"]])
    return [f"{name}: {p}" for p in problems]


def pr_problems(emu: GitHubEmulator, pr: dict[str, Any], opp: dict[str, Any]) -> list[str]:
    where = f"PR #{pr['number']} ({pr['head']['ref']})"
    out = []
    if pr["state"] != "open":
        out.append(f"{where} is {pr['state']}")
    labels = {label["name"] for label in pr["labels"]}
    if labels != set(LABELS):
        out.append(f"{where} has labels {sorted(labels)}, expected {LABELS}")
    reviewers = {user["login"] for user in pr["requested_reviewers"]}
    if reviewers != set(REVIEWERS):
        out.append(f"{where} asks {sorted(reviewers)} for review, expected {REVIEWERS} (defect 12 if empty)")
    marker = parse_marker(pr["body"])
    if not marker or f"finops/{marker[0]}" != pr["head"]["ref"]:
        out.append(f"{where}: body without the change-set marker of its branch: {marker}")
    status = opp["status"]
    if status["state"] != "Proposed" or status["pullRequest"].get("number") != pr["number"]:
        out.append(f"{where}: its SavingsOpportunity is {status['state']} for PR {status['pullRequest']}")
    workload = opp["spec"]["target"]["workload"]["name"]
    if workload not in (pr["body"] or ""):
        out.append(f"{where}: the body does not mention {workload}")
    return out + branch_problems(emu, pr, where, status["changes"])


def branch_problems(emu: GitHubEmulator, pr: dict[str, Any], where: str, changes: list[dict[str, Any]]) -> list[str]:
    """The branch is one commit on the base with exactly the listed changes (all files, nothing else)."""
    head, base = pr["head"]["ref"], pr["base"]["ref"]
    if git("rev-list", "--count", f"{base}..{head}", cwd=emu.bare) != "1":
        return [f"{where}: not one commit on {base}"]
    diff = git("diff", f"{base}...{head}", cwd=emu.bare)
    changed = sorted(line[0] + line[1:].strip().replace("'", "") for line in diff.splitlines()
                     if line.startswith(("+", "-")) and not line.startswith(("+++", "---")))
    expected = sorted(f"{sign}{c['field'].rsplit('.', 1)[1]}: {c[side]}" for c in changes
                      for sign, side in (("-", "before"), ("+", "after")))
    return [] if changed == expected else [f"{where}: branch diff {changed} != listed changes {expected}"]
