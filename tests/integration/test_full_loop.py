"""The whole money loop on real servers: Prometheus -> findings -> PRs -> merge -> verified savings.

World (``tests/support/loop.py``): the demo scenario backfilled into Debian's
prometheus, its EBS volumes in moto (server mode), examples/gitops in a bare repo
behind the GitHub emulator. Every run goes through ``reconcile.run_policy``:

    run 1  findings from QUERIED data; one PR per change set, labelled; ledger Proposed
    run 2  same data: the same PRs updated, not one new PR
    merge  payments PR merged in the emulator; Argo CD "syncs" the merged manifests
    run 3  after the settle period: Merged -> Verified, realized ~= estimated
    close  search PR closed by a human
    run 4  Rejected, and not reopened
"""
from __future__ import annotations

import pytest
from finops_operator.ledger import OpportunityState as S
from finops_operator.models import WorkloadRef
from finops_operator.units import parse_cpu, parse_memory

from tests.support.fixtures_git import git
from tests.support.loop import argo_sync, later, utcnow
from tests.support.prom_requests import scan_requests

pytestmark = pytest.mark.integration
LABELS = {"finops", "cost-savings"}
PULLS = r"/repos/acme/gitops/pulls"
API = "Deployment/payments/payments-api/api"


def finding(report, target: str, type_: str):
    found = [f for f in report.result.findings if str(f.target) == target and f.type.value == type_]
    assert found, f"no {type_} finding for {target}; findings: {[str(f.target) for f in report.result.findings]}"
    return found[0]


def change(f, field: str):
    return next(c for c in f.changes if c.field == field)


def pr_by_branch(github, branch: str) -> dict:
    return next(p for p in github.pulls() if p["head"]["ref"] == branch)


def history(ledger, opp_id: str) -> list[str]:
    return [t.to_state for t in ledger.get(opp_id).history]


def assert_run_one_findings(loop, report) -> None:
    """Concrete findings, made from what Prometheus and moto answered."""
    api = finding(report, API, "rightsize-cpu")
    cpu = change(api, "resources.requests.cpu")
    assert cpu.before == "1000m" and parse_cpu(cpu.after) <= 0.3 and api.monthly_savings > 30
    batch = finding(report, "Deployment/analytics/analytics-batch/worker", "rightsize-memory")
    mem = change(batch, "resources.requests.memory")
    assert parse_memory(mem.after) > parse_memory(mem.before) == 6144 * 2**20          # raised, never cut
    worker = report.result.state.workload(WorkloadRef("Deployment", "analytics", "analytics-batch")).container("worker")
    assert worker.oom_kills > 0, "the OOM kills must come from kube-state-metrics in Prometheus"
    assert not any(c.oom_kills for w in loop.inventory.workloads for c in w.containers), "inventory was wiped"
    ui_cpu = finding(report, "Deployment/analytics/report-ui/ui", "rightsize-cpu")
    ui_mem = finding(report, "Deployment/analytics/report-ui/ui", "rightsize-memory")
    assert change(ui_cpu, "resources.requests.cpu").before is None and change(ui_cpu, "resources.requests.cpu").after
    assert change(ui_mem, "resources.requests.memory").before is None
    legacy = finding(report, f"volume/{loop.volume_ids['legacy-reports']}", "orphan-volume")
    assert legacy.evidence["size_gib"] == 500 and legacy.monthly_savings == pytest.approx(50.0)
    assert not [f for f in report.result.findings
                if str(f.target) in (f"volume/{loop.volume_ids['grafana-data']}",
                                     f"volume/{loop.volume_ids['scratch-build-cache']}")], "in use / too young"


def run_one(loop, now, reader):
    """Run 1: findings from queried data, one labelled PR per change set, ledger Proposed with PR URLs."""
    one = loop.run(now, deps=loop.deps(reader=reader))
    assert one.errors == {}, one.errors
    assert reader.chunks == [1] and reader.queries[0] <= scan_requests(node_query=True), \
        "batched: a fixed few requests per scan, not per pod"
    assert_run_one_findings(loop, one)
    pulls = loop.github.pulls()
    published = {p.change_set: p.ref for p in one.published}
    assert set(published) == {"rightsize-payments", "rightsize-search", "rightsize-analytics", "orphan-volumes"}
    assert all(ref.created and ref.state == "open" for ref in published.values())
    assert len(pulls) == 4 and all({label["name"] for label in p["labels"]} == LABELS for p in pulls)
    assert all(p["requested_reviewers"][0]["login"] == "alice" for p in pulls)
    changed = git("diff", "--name-only", "main", "finops/rightsize-payments", cwd=loop.bare).split()
    assert changed == ["apps/payments/cronjob.yaml", "apps/payments/deployments.yaml"]
    proposed = [o for o in loop.ledger.opportunities if o.state == S.PROPOSED]
    assert len(proposed) >= 12 and all(o.pr_url and o.pr_url.endswith(f"/pull/{o.pr_number}") for o in proposed)
    api_id = finding(one, API, "rightsize-cpu").id
    assert loop.ledger.get(api_id).pr_url == pr_by_branch(loop.github, "finops/rightsize-payments")["html_url"]
    return one


def run_two(loop, now, reader, one) -> None:
    """Run 2, same data: the same PRs are updated, not one new PR is opened."""
    posts = loop.github.calls("POST", PULLS)
    two = loop.run(later(now, minutes=30), deps=loop.deps(reader=reader))
    assert two.errors == {}, two.errors
    assert {p.change_set: p.ref.number for p in two.published} == {p.change_set: p.ref.number for p in one.published}
    assert not any(p.ref.created for p in two.published)
    assert len(loop.github.pulls()) == 4 and loop.github.calls("POST", PULLS) == posts
    api_id = finding(one, API, "rightsize-cpu").id
    assert history(loop.ledger, api_id) == ["Detected", "Proposed"]


def merge_sync_verify(loop, now, reader, one) -> None:
    """Merge the payments PR, let "Argo CD" sync main, run past the settle period: Merged -> Verified."""
    loop.github.merge(pr_by_branch(loop.github, "finops/rightsize-payments")["number"])
    assert f"{API}" in argo_sync(loop.inventory, loop.bare)
    api_finding = finding(one, API, "rightsize-cpu")
    live = loop.inventory.workload(WorkloadRef("Deployment", "payments", "payments-api")).container("api")
    assert live.resources.cpu_request == pytest.approx(parse_cpu(change(api_finding, "resources.requests.cpu").after))
    three = loop.run(later(now, days=7, hours=1), deps=loop.deps(reader=reader))
    assert three.errors == {}, three.errors
    api = loop.ledger.get(api_finding.id)
    assert history(loop.ledger, api.id)[-2:] == ["Merged", "Verified"]
    assert api.realized_monthly_savings == pytest.approx(api.estimated_monthly_savings, rel=0.05)
    payments = [o for o in loop.ledger.opportunities if o.change_set == "rightsize-payments"]
    assert payments and all(o.state == S.VERIFIED for o in payments)
    assert set(three.verified) == {o.id for o in payments}
    assert loop.ledger.totals()["total"]["realized"] == pytest.approx(
        sum(o.realized_monthly_savings for o in payments), abs=0.02)
    assert len(loop.github.pulls()) == 4, "nothing re-proposed for a merged, unchanged recommendation"


def close_and_reject(loop, now, reader) -> None:
    """A human closes the search PR; run 4: Rejected, and the PR is not reopened."""
    search_pr = pr_by_branch(loop.github, "finops/rightsize-search")
    loop.github.close(search_pr["number"])
    four = loop.run(later(now, days=7, hours=2), deps=loop.deps(reader=reader))
    assert four.errors == {}, four.errors
    search = [o for o in loop.ledger.opportunities if o.change_set == "rightsize-search"]
    assert search and all(o.state == S.REJECTED for o in search)
    # the one reopen rule (ledger.should_reopen) runs as a guardrail: nothing is planned or pushed for it
    assert all(p.change_set != "rightsize-search" for p in four.published)
    assert all(four.result.decisions[o.id].reasons[-1].rule == "rejected" for o in search)
    assert len(loop.github.pulls()) == 4 and loop.github.pr(search_pr["number"]).state == "closed"


def test_the_money_loop_on_real_servers(loop) -> None:
    now, reader = utcnow(), loop.reader()
    one = run_one(loop, now, reader)
    run_two(loop, now, reader, one)
    merge_sync_verify(loop, now, reader, one)
    close_and_reject(loop, now, reader)
    assert reader.queries == [reader.queries[0]] * 4, "the same fixed number of Prometheus requests every run"
