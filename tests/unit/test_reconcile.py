"""reconcile: PR sync, realized savings, verification and stage isolation, with fakes at the edges.

The state is the demo scenario through the snapshot path (no servers); the
provider is an in-memory fake that records every call. The real-server version of
all this is tests/integration/test_full_loop*.py.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from finops_operator.actuation.providers import PullRequestRef
from finops_operator.cli.demo import DEMO_POLICY, DEMO_SCENARIO, examples_dir
from finops_operator.cli.scan import load_policy_file
from finops_operator.errors import DataSourceError, ProviderError
from finops_operator.ledger import Ledger
from finops_operator.ledger import OpportunityState as S
from finops_operator.models import ChangeSet, ClusterState, Window
from finops_operator.pricing.allocation import cluster_rates
from finops_operator.pricing.catalog import PriceBook
from finops_operator.reconcile import (
    LoopDeps,
    realized_savings,
    run_policy,
    sync_pull_requests,
    verify_merged,
)
from finops_operator.settings import Mode
from finops_operator.simulator import load_scenario, simulate
from finops_operator.units import parse_cpu
from finops_operator.usage import state_with_usage

NOW = datetime(2026, 11, 16, 1, tzinfo=UTC)
API = "Deployment/payments/payments-api/api"


@pytest.fixture(scope="module")
def demo_state() -> ClusterState:
    return state_with_usage(simulate(load_scenario(DEMO_SCENARIO)).snapshot())


@pytest.fixture
def state(demo_state) -> ClusterState:
    return copy.deepcopy(demo_state)


@pytest.fixture(scope="module")
def settings():
    return load_policy_file(DEMO_POLICY)


@dataclass
class FakeProvider:
    """Records calls; ``states`` sets what status() answers per branch; ``fail`` makes publish raise."""

    states: dict[str, PullRequestRef] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)
    published: list[str] = field(default_factory=list)
    status_calls: list[str] = field(default_factory=list)

    def publish(self, cs: ChangeSet, *, base_branch, labels, reviewers, draft) -> PullRequestRef:
        self.published.append(cs.id)
        if cs.id in self.fail:
            raise ProviderError(f"GitHub server error 502 while trying to create the pull request for {cs.branch}")
        number = sorted({*self.published}).index(cs.id) + 1
        return PullRequestRef(number, f"https://github.test/acme/gitops/pull/{number}", cs.branch, "open")

    def status(self, branch: str) -> PullRequestRef | None:
        self.status_calls.append(branch)
        return self.states.get(branch)

    def open_count(self) -> int:
        return 0


def run(settings, ledger, state, provider, now=NOW, **kw):
    deps = LoopDeps(read_state=kw.pop("read_state", lambda window: copy.deepcopy(state)), provider=provider,
                    checkout=kw.pop("checkout", lambda base: examples_dir()))
    return run_policy("demo", settings, ledger, deps, now=now, history=timedelta(days=14), step_seconds=300, **kw)


def opp_for(ledger: Ledger, target: str, type_: str):
    return next(o for o in ledger.opportunities if o.target == target and o.type == type_)


def apply_change(state: ClusterState, opp) -> None:
    """What Argo CD does after the merge: the proposed request is live."""
    workload_ref, _, name = opp.target.rpartition("/")
    workload = next(w for w in state.workloads if str(w.ref) == workload_ref)
    after = next(c["after"] for c in opp.changes if c["field"] == "resources.requests.cpu")
    workload.container(name).resources.cpu_request = parse_cpu(after)


# --------------------------------------------------------------------------- the loop with fakes


def test_a_run_publishes_every_change_set_and_records_proposals(settings, state) -> None:
    ledger, provider = Ledger(), FakeProvider()
    report = run(settings, ledger, state, provider)
    assert report.ok and provider.published == [cs.id for cs in report.result.change_sets]
    assert len(provider.published) >= 4
    api = opp_for(ledger, API, "rightsize-cpu")
    assert api.state == S.PROPOSED and api.pr_url.startswith("https://github.test/")


def test_second_run_updates_the_same_change_sets_despite_the_open_pr_limit(settings, state) -> None:
    count = len(run(settings, Ledger(), state, FakeProvider()).result.change_sets)
    settings = settings.model_copy(update={"guardrails": settings.guardrails.model_copy(update={"max_open_prs": count})})
    ledger, provider = Ledger(), FakeProvider()
    first = run(settings, ledger, state, provider)
    second = run(settings, ledger, state, provider, now=NOW + timedelta(minutes=30))
    assert len(first.result.change_sets) == count
    assert [cs.id for cs in second.result.change_sets] == [cs.id for cs in first.result.change_sets]
    assert all("open PR limit" not in r for r in second.result.plan.deferred.values())


def test_proposals_still_open_do_not_eat_the_daily_budget_twice(settings, state) -> None:
    ledger, provider = Ledger(), FakeProvider()
    first = run(settings, ledger, state, provider)
    proposed = sum(1 for o in ledger.opportunities if o.state == S.PROPOSED)
    assert ledger.changes_on(NOW.date()) == proposed and ledger.proposed_ids() == {
        o.id for o in ledger.opportunities if o.state == S.PROPOSED}
    second = run(settings, ledger, state, provider, now=NOW + timedelta(hours=1))
    assert second.result.monthly_savings == pytest.approx(first.result.monthly_savings)
    assert not any(r.rule == "max-changes-per-day" for d in second.result.decisions.values() for r in d.reasons)


def test_sync_moves_proposed_to_merged_and_rejected_with_one_call_per_branch(settings, state) -> None:
    ledger, provider = Ledger(), FakeProvider()
    run(settings, ledger, state, provider)
    merged_at = NOW + timedelta(hours=2)
    provider.states = {
        "finops/rightsize-payments": PullRequestRef(1, "u", "finops/rightsize-payments", "merged", merged_at=merged_at),
        "finops/rightsize-search": PullRequestRef(2, "u", "finops/rightsize-search", "closed")}
    changed = sync_pull_requests(ledger, provider, NOW + timedelta(hours=3))
    assert len(provider.status_calls) == len(set(provider.status_calls)) == len(provider.published)
    by_cs = {o.change_set: o.state for o in changed}
    assert by_cs == {"rightsize-payments": S.MERGED, "rightsize-search": S.REJECTED}
    assert opp_for(ledger, API, "rightsize-cpu").merged_at == merged_at
    assert sync_pull_requests(ledger, provider, NOW + timedelta(hours=4)) == []      # nothing moves twice
    assert all(o.state == S.PROPOSED for o in ledger.opportunities
               if o.change_set not in ("rightsize-payments", "rightsize-search") and o.pr_url)


# --------------------------------------------------------------------------- realized savings


def test_container_savings_are_realized_only_once_the_request_is_live(settings, state) -> None:
    ledger, provider = Ledger(), FakeProvider()
    run(settings, ledger, state, provider)
    api = opp_for(ledger, API, "rightsize-cpu")
    rates = cluster_rates(state, PriceBook.load())        # the nodes do not change in this test
    assert realized_savings(api, state, rates) is None                     # not synced yet
    apply_change(state, api)
    assert realized_savings(api, state, rates) == pytest.approx(api.estimated_monthly_savings, rel=0.02)
    state.workload(next(w.ref for w in state.workloads if str(w.ref) == API.rpartition("/")[0])).replicas = 6
    assert realized_savings(api, state, rates) == pytest.approx(2 * api.estimated_monthly_savings, rel=0.02)


def test_volume_and_node_group_savings(settings, state) -> None:
    ledger = Ledger()
    run(settings, ledger, state, FakeProvider())
    rates = cluster_rates(state, PriceBook.load())        # volumes and node groups are priced from the ledger
    volume = next(o for o in ledger.opportunities if o.type == "orphan-volume" and "vol-0a1b" in o.target)
    assert realized_savings(volume, state, rates) is None
    state.volumes = [v for v in state.volumes if not volume.target.endswith(v.id)]
    assert realized_savings(volume, state, rates) == volume.estimated_monthly_savings
    spot = next(o for o in ledger.opportunities if o.target == "node-group/spot")
    assert realized_savings(spot, state, rates) is None                    # still 4 nodes
    target = int(next(c["after"] for c in spot.changes if c["field"] == "desired_size"))
    keep = [n for n in state.nodes if n.node_group == "spot"][:target]
    state.nodes = [n for n in state.nodes if n.node_group != "spot"] + keep
    assert realized_savings(spot, state, rates) == spot.estimated_monthly_savings


def test_verify_waits_for_the_settle_period(settings, state) -> None:
    ledger = Ledger()
    run(settings, ledger, state, FakeProvider())
    api = opp_for(ledger, API, "rightsize-cpu")
    ledger.merged(api.id, NOW)
    apply_change(state, api)
    prices, settle = PriceBook.load(), timedelta(days=7)
    assert verify_merged(ledger, state, prices, NOW + timedelta(days=6), settle) == []
    assert verify_merged(ledger, state, prices, NOW + timedelta(days=7), settle) == [api.id]
    assert api.state == S.VERIFIED and api.realized_monthly_savings == pytest.approx(api.estimated_monthly_savings,
                                                                                     rel=0.02)


# --------------------------------------------------------------------------- stage isolation


def test_no_data_means_no_findings_and_no_publishing(settings, state) -> None:
    def broken(window: Window) -> ClusterState:
        raise DataSourceError("Prometheus unavailable after 3 attempts: cannot connect", source="http://prom:9090")

    ledger, provider = Ledger(), FakeProvider()
    report = run(settings, ledger, state, provider, read_state=broken)
    assert report.errors == {"inventory": "http://prom:9090: Prometheus unavailable after 3 attempts: cannot connect"}
    assert report.result is None and provider.published == [] and len(ledger) == 0


def test_a_failing_pr_sync_does_not_stop_the_scan(settings, state) -> None:
    class Down(FakeProvider):
        def status(self, branch):
            raise ProviderError("GitHub server error 503 while trying to list pull requests")

    ledger = Ledger()
    run(settings, ledger, state, FakeProvider())
    report = run(settings, ledger, state, Down(), now=NOW + timedelta(hours=1))
    assert set(report.errors) == {"pullRequests"} and "503" in report.errors["pullRequests"]
    assert report.result is not None and report.published


def test_one_failing_change_set_does_not_stop_the_others(settings, state) -> None:
    ledger, provider = Ledger(), FakeProvider(fail={"rightsize-payments"})
    report = run(settings, ledger, state, provider)
    assert set(report.errors) == {"publish/rightsize-payments"}
    assert len(report.published) == len(report.result.change_sets) and len(provider.published) >= 4
    assert opp_for(ledger, API, "rightsize-cpu").state == S.DETECTED
    assert any(o.state == S.PROPOSED for o in ledger.opportunities)


def test_a_bug_in_a_stage_is_recorded_not_raised(settings, state) -> None:
    def checkout(base: str):
        raise TypeError("boom")

    ledger, provider = Ledger(), FakeProvider()
    report = run(settings, ledger, state, provider, checkout=checkout)
    assert report.errors == {"checkout": "TypeError: boom"}
    assert report.result is not None and provider.published == []            # findings, but nothing to edit
    assert all(o.state != S.PROPOSED for o in ledger.opportunities)


def test_dry_run_never_checks_out_or_publishes(settings, state) -> None:
    settings = settings.model_copy(update={"mode": Mode.DRY_RUN})
    calls = []
    ledger, provider = Ledger(), FakeProvider()
    report = run(settings, ledger, state, provider, checkout=lambda base: calls.append(base))
    assert report.ok and calls == [] and provider.published == [] and report.result.findings


# --------------------------------------------------------------------------- issue 7: #10, #18, #19


def _with_guardrails(settings, **update):
    return settings.model_copy(update={"guardrails": settings.guardrails.model_copy(update=update)})


def test_the_daily_limit_holds_across_runs_of_one_day(settings, state) -> None:
    """Issue 7 #10: slots of still-Proposed opportunities were handed out again by the next run."""
    limited = _with_guardrails(settings, max_changes_per_day=2)
    ledger, provider = Ledger(), FakeProvider()
    run(limited, ledger, state, provider)
    assert ledger.changes_on(NOW.date(), NOW.tzinfo) == 2
    # one proposed workload goes away (scaled down, deleted): its finding is not found again
    gone = next(o for o in ledger.opportunities if o.state == S.PROPOSED and o.type.startswith("rightsize"))
    later = copy.deepcopy(state)
    later.workloads = [w for w in later.workloads if not gone.target.startswith(f"{w.ref}/")]
    run(limited, ledger, later, provider, now=NOW + timedelta(hours=1))
    # a human closes another PR: its slot stays used today
    still = next(o for o in ledger.opportunities if o.state == S.PROPOSED and o.id != gone.id)
    provider.states[still.branch] = PullRequestRef(1, "u", still.branch, "closed")
    third = run(limited, ledger, later, provider, now=NOW + timedelta(hours=2))
    assert ledger.changes_on(NOW.date(), NOW.tzinfo) == 2
    assert any(r.rule == "max-changes-per-day" for d in third.result.decisions.values() for r in d.reasons)


def test_a_rejected_change_is_not_proposed_again_in_the_same_run(settings, state) -> None:
    """Issue 7 #18: with the plain-git provider a deleted branch was pushed again at once."""
    ledger, provider = Ledger(), FakeProvider()
    run(settings, ledger, state, provider)
    api = opp_for(ledger, API, "rightsize-cpu")
    provider.states[api.branch] = PullRequestRef(None, "file:///remote#" + api.branch, api.branch, "closed")
    provider.published.clear()
    second = run(settings, ledger, state, provider, now=NOW + timedelta(hours=1))
    assert ledger.get(api.id).state == S.REJECTED
    decision = second.result.decisions[api.id]
    assert decision.verdict.value == "deny" and decision.reasons[-1].rule == "rejected"
    assert "changes materially" in decision.reasons[-1].message
    assert all(api.id not in {f.id for f in cs.findings} for cs in second.result.change_sets)


def test_a_failing_or_disabled_detector_supersedes_nothing(settings, state) -> None:
    """Issue 7 #19: a disabled or failing detector superseded all its open opportunities."""
    ledger, provider = Ledger(), FakeProvider()
    run(settings, ledger, state, provider)
    before = {o.id: o.state for o in ledger.opportunities}
    volumes_off = settings.model_copy(update={"detectors": settings.detectors.model_copy(update={
        "volumes": settings.detectors.volumes.model_copy(update={"enabled": False})})})
    report = run(volumes_off, ledger, state, provider, now=NOW + timedelta(hours=1))
    assert report.ok
    volume_ids = [i for i, o in ((o.id, o) for o in ledger.opportunities) if o.detector == "orphan-volumes"]
    assert volume_ids and all(ledger.get(i).state == before[i] for i in volume_ids)
    assert not any(o.state == S.SUPERSEDED for o in ledger.opportunities)
