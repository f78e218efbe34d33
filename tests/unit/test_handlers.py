"""kopf handlers called as plain functions: what they patch, when they run, what they contain."""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import kopf
import pytest
from finops_operator.api.coordination import Claim
from finops_operator.api.runs import RunOutcome
from finops_operator.api.schedule import RETRY, RUN_NOW, RUN_NOW_HANDLED
from finops_operator.config import OperatorConfig
from finops_operator.handlers import budgets, opportunities, policies
from finops_operator.handlers.startup import fill_memo

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
LOG = logging.getLogger("test")


def body(spec: dict | None = None, *, annotations: dict | None = None, status: dict | None = None,
         kind: str = "FinOpsPolicy") -> kopf.Body:
    raw = {"apiVersion": "finops.dev/v1alpha1", "kind": kind,
           "metadata": {"name": "p", "namespace": "finops-system", "uid": "u", "generation": 2,
                        "annotations": annotations or {}},
           "spec": spec if spec is not None else {"mode": "DryRun", "schedule": "0 6 * * *",
                                                  "timeZone": "Europe/Berlin",
                                                  "dataSources": {"prometheus": {"url": "http://prom:9090"}}},
           "status": status or {}}
    return kopf.Body(raw)


class FakeCoordinator:
    """The run Lease as a dict: held by someone else when ``held_by`` is set; ``fresh`` is the API's copy."""

    def __init__(self):
        self.held_by: str | None = None
        self.fresh: dict | None = None
        self.log: list[str] = []

    def claim(self, namespace, name, uid, now):
        if self.held_by:
            self.log.append("refused")
            return None
        self.log.append("claimed")
        return Claim(lease={"metadata": {"name": f"finops-run-{uid}"}, "spec": {}}, body=self.fresh)

    def renew(self, claim, now):
        self.log.append("renewed")
        return True

    def finish(self, claim, now):
        self.log.append("finished")

    def release(self, claim):
        self.log.append("released")

    def forget(self, uid):
        self.log.append(f"forgot {uid}")

    def record(self, namespace, name, status):
        self.log.append("recorded")
        self.status = status


@pytest.fixture
def memo(tmp_path, monkeypatch):
    for name in ("FINOPS_CLUSTER_NAME", "FINOPS_POD_NAME", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    memo = kopf.Memo()
    fill_memo(memo, OperatorConfig(workdir=tmp_path, cluster_name="unit"), None)
    memo.coordinator = FakeCoordinator()
    return memo


@pytest.fixture
def events(monkeypatch):
    posted = []
    fake = lambda api, obj, *, type_, reason, message, now=None, instance=None: posted.append((type_, reason, message)) or True
    monkeypatch.setattr(policies, "post_event", fake)
    monkeypatch.setattr(budgets, "post_event", fake)
    monkeypatch.setattr(policies, "utcnow", lambda: NOW)
    return posted


def conditions(patch: kopf.Patch) -> dict:
    return {c["type"]: c for c in patch["status"]["conditions"]}


def test_valid_policy_is_scheduled_in_its_time_zone(memo, events):
    b, patch = body(), kopf.Patch()
    policies.validate(body=b, status=b.status, patch=patch, memo=memo, logger=LOG)
    assert patch["status"]["nextRunTime"] == "2026-06-16T04:00:00Z"       # 06:00 CEST
    ready = conditions(patch)["Ready"]
    assert ready["status"] == "Unknown" and ready["reason"] == "Scheduled" and ready["observedGeneration"] == 2
    assert events == []


def test_invalid_policy_reports_the_field_and_gives_up(memo, events):
    b, patch = body({"mode": "DryRun", "schedule": "0 6 31 2 *",
                     "dataSources": {"prometheus": {"url": "http://p"}}}), kopf.Patch()
    with pytest.raises(kopf.PermanentError, match="never fires"):
        policies.validate(body=b, status=b.status, patch=patch, memo=memo, logger=LOG)
    ready = conditions(patch)["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert ready["message"].startswith("spec.schedule: ")
    assert events and events[0][:2] == ("Warning", "InvalidSpec") and "spec.schedule" in events[0][2]


def tick(b: kopf.Body, memo, index=None, fresh: kopf.Body | None = None) -> dict:
    """One timer tick: kopf's patch, plus the run's status written directly (``status``), as the API ends up.

    ``fresh`` is the policy as the API has it (default: as the tick sees it).
    """
    memo.coordinator.fresh = json.loads(json.dumps(dict(fresh if fresh is not None else b)))
    memo.coordinator.status = None
    patch = kopf.Patch()
    asyncio.run(policies.tick(body=b, meta=b.meta, status=b.status, name="p", namespace="finops-system",
                              patch=patch, memo=memo, logger=LOG, approved_opportunities=index or {}))
    out = json.loads(json.dumps(dict(patch)))
    if memo.coordinator.status is not None:
        assert "status" not in out, "the run's status is written before kopf's patch, not with it"
        out["status"] = memo.coordinator.status
    return out


@pytest.fixture
def runs(monkeypatch):
    """Replace the blocking run with a recorder returning a prepared outcome."""
    calls = []

    def fake(policy, api_client, *, now, workdir, approved, cluster, region):
        calls.append({"policy": policy, "approved": approved, "workdir": workdir, "cluster": cluster})
        outcome = calls_outcome[0](policy) if calls_outcome else RunOutcome(policy=policy, started=now)
        return outcome
    calls_outcome: list = []
    monkeypatch.setattr(policies, "execute_run", fake)
    monkeypatch.setattr(policies, "record_metrics", lambda outcome, finished=None: None)
    monkeypatch.setattr(policies, "_post_events", lambda memo, raw, outcome: None)
    return calls, calls_outcome


def test_not_due_does_not_run(memo, events, runs):
    calls, _ = runs
    patch = tick(body(status={"nextRunTime": "2026-06-16T04:00:00Z"}), memo)
    assert calls == [] and "status" not in patch


def test_run_now_runs_once_and_records_it(memo, events, runs):
    calls, _ = runs
    b = body(annotations={RUN_NOW: "7"}, status={"nextRunTime": "2026-06-16T04:00:00Z"})
    patch = tick(b, memo, index={("finops-system", "p"): ["abc"]})
    assert len(calls) == 1 and calls[0]["approved"] == frozenset({"abc"})
    assert calls[0]["workdir"] == Path(memo.workdir) / "finops-system" / "p"
    assert patch["metadata"]["annotations"][RUN_NOW_HANDLED] == "7"
    assert patch["metadata"]["annotations"][RETRY] is None
    assert conditions(patch)["Ready"]["reason"] == "RunSucceeded"
    assert patch["status"]["lastRunTime"] == "2026-06-15T10:00:00Z"
    handled = body(annotations={RUN_NOW: "7", RUN_NOW_HANDLED: "7"}, status={"nextRunTime": "2026-06-16T04:00:00Z"})
    tick(handled, memo)
    assert len(calls) == 1, "a handled run-now value does not run again (e.g. after a restart)"


def test_scheduled_time_reached_runs(memo, events, runs):
    calls, _ = runs
    tick(body(status={"nextRunTime": "2026-06-15T09:59:59Z"}), memo)
    assert len(calls) == 1


def test_transient_failures_back_off_exponentially(memo, events, runs):
    _, outcome = runs
    outcome.append(lambda p: RunOutcome(policy=p, started=NOW, errors={"inventory": "Prometheus unavailable"},
                                        permanent={"inventory": False}))
    patch = tick(body(annotations={RUN_NOW: "1"}), memo)
    retry = json.loads(patch["metadata"]["annotations"][RETRY])
    assert retry == {"attempt": 1, "at": "2026-06-15T10:01:00Z"}
    assert patch["status"]["nextRunTime"] == "2026-06-15T10:01:00Z"
    assert conditions(patch)["Ready"]["reason"] == "TransientError"
    # the retry is due only at its time; then the second attempt waits twice as long
    assert "status" not in tick(body(annotations={RUN_NOW: "1", RUN_NOW_HANDLED: "1",
                                                  RETRY: json.dumps({"attempt": 1, "at": "2026-06-15T10:01:00Z"})},
                                     status={"nextRunTime": "2026-06-15T10:01:00Z"}), memo)
    patch = tick(body(annotations={RETRY: json.dumps({"attempt": 1, "at": "2026-06-15T09:59:00Z"})}), memo)
    assert json.loads(patch["metadata"]["annotations"][RETRY]) == {"attempt": 2, "at": "2026-06-15T10:02:00Z"}


def test_permanent_failures_wait_for_the_schedule(memo, events, runs):
    _, outcome = runs
    outcome.append(lambda p: RunOutcome(policy=p, started=NOW, errors={"setup": "may not read Secret x (403)"},
                                        permanent={"setup": True}))
    patch = tick(body(annotations={RUN_NOW: "1"}), memo)
    assert patch["metadata"]["annotations"][RETRY] is None
    assert patch["status"]["nextRunTime"] == "2026-06-16T04:00:00Z"
    assert conditions(patch)["Ready"]["reason"] == "PermanentError"


def test_a_crashing_run_is_contained(memo, events, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("bug in a detector")
    monkeypatch.setattr(policies, "execute_run", boom)
    monkeypatch.setattr(policies, "record_metrics", lambda outcome, finished=None: None)
    monkeypatch.setattr(policies, "_post_events", lambda memo, raw, outcome: None)
    patch = tick(body(annotations={RUN_NOW: "1"}), memo)
    ready = conditions(patch)["Ready"]
    assert ready["status"] == "False" and "RuntimeError: bug in a detector" in ready["message"]


def test_a_policy_already_running_is_skipped(memo, events, runs):
    calls, _ = runs

    async def scenario():
        lock = memo.locks.setdefault(("finops-system", "p"), asyncio.Lock())
        async with lock:
            b = body(annotations={RUN_NOW: "1"})
            await policies.tick(body=b, meta=b.meta, status=b.status, name="p", namespace="finops-system",
                                patch=kopf.Patch(), memo=memo, logger=LOG, approved_opportunities={})
    asyncio.run(scenario())
    assert calls == []


def test_invalid_policy_never_runs(memo, events, runs):
    calls, _ = runs
    tick(body({"mode": "PullRequest", "dataSources": {"prometheus": {"url": "http://p"}}},
              annotations={RUN_NOW: "1"}), memo)
    assert calls == []


def test_budget_is_accepted_until_its_first_evaluation(memo, events):
    b, patch = body({"amount": "5000", "currency": "USD", "period": "Quarterly"}, kind="Budget"), kopf.Patch()
    budgets.validate_budget(body=b, status=b.status, patch=patch, memo=memo, logger=LOG)
    ready = conditions(patch)["Ready"]
    assert ready["status"] == "True" and ready["reason"] == "Accepted"
    assert "5000 USD per quarterly period" in ready["message"] and "first evaluation" in ready["message"]


def test_a_budget_in_another_currency_is_refused_saying_only_usd_is_supported(memo, events):
    b, patch = body({"amount": "5000", "currency": "EUR"}, kind="Budget"), kopf.Patch()
    with pytest.raises(kopf.PermanentError):
        budgets.validate_budget(body=b, status=b.status, patch=patch, memo=memo, logger=LOG)
    ready = conditions(patch)["Ready"]
    assert ready["reason"] == "InvalidSpec" and ready["message"].startswith("spec.currency: only USD is supported")


@pytest.mark.parametrize("spec, field", [({"amount": "0"}, "spec.amount"), ({"amount": "-5"}, "spec.amount"),
                                         ({"amount": "10", "thresholds": [{"percent": 90, "action": "Alert"},
                                                                          {"percent": 80, "action": "Notify"}]},
                                          "spec.thresholds[1].percent"),
                                         ({"amount": "10", "thresholds": [{"percent": 80, "action": "Panic"}]},
                                          "spec.thresholds[0].action")])
def test_invalid_budget(memo, events, spec, field):
    b, patch = body(spec, kind="Budget"), kopf.Patch()
    with pytest.raises(kopf.PermanentError):
        budgets.validate_budget(body=b, status=b.status, patch=patch, memo=memo, logger=LOG)
    ready = conditions(patch)["Ready"]
    assert ready["reason"] == "InvalidSpec" and ready["message"].startswith(f"{field}: ")
    assert events[-1][1] == "InvalidSpec"


def test_approved_index():
    labels = {"finops.dev/opportunity-id": "abc"}
    spec = {"policyRef": {"name": "p"}}
    assert opportunities.approved_opportunities(namespace="ns", labels=labels, spec=spec) == {("ns", "p"): "abc"}
    assert opportunities._approved(annotations={"finops.dev/approved": "true"})
    assert not opportunities._approved(annotations={"finops.dev/approved": "no"})
    assert opportunities.approved_opportunities(namespace="ns", labels={}, spec=spec) is None


def test_a_policy_another_operator_is_running_is_skipped(memo, events, runs):
    calls, _ = runs
    memo.coordinator.held_by = "other-replica"
    assert "status" not in tick(body(annotations={RUN_NOW: "1"}), memo)
    assert calls == [] and memo.coordinator.log == ["refused"]


def test_a_run_now_handled_elsewhere_is_not_run_again(memo, events, runs):
    """The watch still shows run-now=1 unhandled; the API (read after claiming the Lease) says it was handled."""
    calls, _ = runs
    stale = body(annotations={RUN_NOW: "1"}, status={"nextRunTime": "2026-06-16T04:00:00Z"})
    fresh = body(annotations={RUN_NOW: "1", RUN_NOW_HANDLED: "1"}, status={"nextRunTime": "2026-06-16T04:00:00Z"})
    patch = tick(stale, memo, fresh=fresh)
    assert calls == [] and "status" not in patch
    assert memo.coordinator.log == ["claimed", "released"]


def test_a_run_holds_its_lease_until_after_the_status_is_written(memo, events, runs):
    calls, _ = runs
    tick(body(annotations={RUN_NOW: "1"}), memo)
    assert len(calls) == 1 and calls[0]["cluster"] == "unit", "the cluster name comes from the configuration"
    assert memo.coordinator.log == ["claimed", "finished", "recorded"], "kept after the run; status written"


def test_a_deleted_policy_forgets_its_lease_and_metrics(memo):
    from finops_operator import metrics
    metrics.LAST_SUCCESS.labels(policy="ns/gone").set(1.0)
    asyncio.run(policies.forget(uid="u-1", name="gone", namespace="ns", memo=memo))
    assert memo.coordinator.log == ["forgot u-1"]
    from prometheus_client import generate_latest
    assert 'policy="ns/gone"' not in generate_latest(metrics.REGISTRY).decode()


def test_when_the_status_cannot_be_written_first_kopf_writes_it(memo, events, runs):
    from finops_operator.errors import DataSourceError

    def refuse(namespace, name, status):
        raise DataSourceError("cannot write the status (503)")
    memo.coordinator.record = refuse
    patch = kopf.Patch()
    memo.coordinator.fresh = json.loads(json.dumps(dict(body(annotations={RUN_NOW: "1"}))))
    b = body(annotations={RUN_NOW: "1"})
    asyncio.run(policies.tick(body=b, meta=b.meta, status=b.status, name="p", namespace="finops-system",
                              patch=patch, memo=memo, logger=LOG, approved_opportunities={}))
    assert patch["status"]["conditions"] and patch["metadata"]["annotations"][RUN_NOW_HANDLED] == "1"


def test_a_huge_run_now_value_is_handled_by_its_digest() -> None:
    """Copying a 200 kB run-now value into run-now-handled overflowed the annotations (422), so the
    policy ran again on every tick; the digest is recorded instead, and due() accepts it."""
    from finops_operator.api.schedule import due, handled_marker
    huge = "x" * 200_000
    marker = handled_marker(huge)
    assert marker.startswith("sha256:") and len(marker) < 100
    assert handled_marker("7") == "7"
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    assert due(now, {"nextRunTime": "2026-06-16T04:00:00Z"}, {RUN_NOW: huge}) == "run-now"
    assert due(now, {"nextRunTime": "2026-06-16T04:00:00Z"}, {RUN_NOW: huge, RUN_NOW_HANDLED: marker}) is None


@pytest.mark.parametrize("garbage", ["{", "[1, 2]", "null", "5", '"text"'])
def test_garbage_in_kopfs_own_annotations_counts_as_absent(garbage: str) -> None:
    """A hand-edited finops.dev/last-handled-configuration or progress annotation made kopf fail on
    every event of that object (JSONDecodeError / AttributeError), so it was never handled again."""
    from finops_operator.handlers.startup import _TolerantDiffBase, _TolerantProgress
    body = kopf.Body({"metadata": {"name": "p", "annotations": {
        "finops.dev/last-handled-configuration": garbage, "finops.dev/validate": garbage}}})
    assert _TolerantDiffBase(prefix="finops.dev", key="last-handled-configuration").fetch(body=body) is None
    assert _TolerantProgress(prefix="finops.dev").fetch(key=kopf.HandlerId("validate"), body=body) is None
    good = kopf.Body({"metadata": {"annotations": {"finops.dev/validate": '{"retries": 1}'}}})
    assert _TolerantProgress(prefix="finops.dev").fetch(key=kopf.HandlerId("validate"), body=good) == {"retries": 1}
