"""One operator run without kopf: ledger in and out, status, conditions, events, retry classification."""
from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from finops_operator.api import runs
from finops_operator.api.opportunities import from_object, to_object
from finops_operator.api.policy import read_policy
from finops_operator.api.store import SaveResult
from finops_operator.api.wiring import ScopedReader, Wiring
from finops_operator.errors import (ConfigError, DataSourceError, DataSourceRefused, ProviderError,
                                     ProviderRefused)
from finops_operator.reconcile import LoopDeps

from tests.support.fixtures_detectors import GIB, StateBuilder, app, stats

NOW = datetime(2024, 6, 15, 0, 0, tzinfo=UTC)


class MemoryStore:
    """OpportunityStore stand-in: objects in a dict, the same mapping code."""

    objects: ClassVar[dict[str, dict]] = {}
    fail: ClassVar[bool] = False

    def __init__(self, api_client, *, namespace, policy, policy_uid=None):
        self.namespace, self.policy, self.policy_uid = namespace, policy, policy_uid

    def list_objects(self):
        return list(self.objects.values())

    def approved(self, objects):
        return frozenset()

    def save(self, changed, findings=None):
        result = SaveResult()
        for opp in changed:
            if self.fail:
                result.failed[opp.id] = "503: etcd is sad"
                continue
            obj = to_object(opp, policy=self.policy, namespace=self.namespace, finding=(findings or {}).get(opp.id))
            (result.updated if obj["metadata"]["name"] in self.objects else result.created).append(obj["metadata"]["name"])
            self.objects[obj["metadata"]["name"]] = obj
        return result


@pytest.fixture
def store(monkeypatch):
    MemoryStore.objects, MemoryStore.fail = {}, False
    monkeypatch.setattr(runs, "OpportunityStore", MemoryStore)
    return MemoryStore


def policy_spec(**extra):
    body = {"metadata": {"name": "p", "namespace": "finops-system", "generation": 4},
            "spec": {"mode": "DryRun", "dataSources": {"prometheus": {"url": "http://prom:9090", "historyWindow": "14d"}},
                     **extra}}
    return read_policy(body, operator_ns="finops-system")


def over_requested_state():
    b = StateBuilder()
    b.node("n1", cpu=4.0, memory=16 * GIB)
    b.workload("web", app(cpu="1", memory="1Gi"))
    b.usage("web", "app", cpu=stats(0.5), memory=stats(0.8 * GIB))
    return b.build()


def wiring_with(reader):
    def build(policy, api_client, *, workdir, approved):
        scoped = ScopedReader(reader, ["shop"])
        return Wiring(deps=LoopDeps(read_state=scoped, approved=approved), reader=scoped, namespaces=["shop"])
    return build


def test_a_good_run_records_the_ledger_and_reports_ready(store, tmp_path):
    outcome = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path,
                               build=wiring_with(lambda window: over_requested_state()))
    assert outcome.ok and outcome.errors == {}
    assert len(store.objects) == 1
    opp = from_object(next(iter(store.objects.values())))
    assert opp.type == "rightsize-cpu" and opp.state.value == "Detected"
    status = runs.run_status(outcome, {}, now=NOW, next_at=NOW + timedelta(hours=6))
    ready = {c["type"]: c for c in status["conditions"]}
    assert ready["Ready"]["status"] == "True" and ready["Ready"]["reason"] == "RunSucceeded"
    assert "1 findings (1 allowed" in ready["Ready"]["message"]
    assert ready["PullRequestsReady"]["reason"] == "DryRun"
    assert status["findings"] == 1 and status["opportunities"]["detected"] == 1
    assert status["namespacesScanned"] == 1 and status["observedGeneration"] == 4
    assert float(status["estimatedMonthlySavings"]) == pytest.approx(opp.estimated_monthly_savings, abs=0.01)
    assert status["nextRunTime"] == "2024-06-15T06:00:00Z" and status["scopeErrors"] == []
    events = runs.run_events(outcome)
    assert [e[:2] for e in events] == [("Normal", "RunSucceeded")]
    assert "1 created, 0 updated" in events[0][2]


def test_the_second_run_reloads_the_ledger_and_changes_nothing(store, tmp_path):
    build = wiring_with(lambda window: over_requested_state())
    runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=build)
    first = {k: dict(v) for k, v in store.objects.items()}
    second = runs.execute_run(policy_spec(), None, now=NOW + timedelta(days=1), workdir=tmp_path, build=build)
    assert second.ok and second.saved.created == [] and second.saved.updated == []
    assert store.objects == first


def test_a_data_source_outage_is_transient(store, tmp_path):
    def down(window):
        raise DataSourceError("Prometheus unavailable after 3 attempts", source="http://prom:9090")
    outcome = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=wiring_with(down))
    assert outcome.errors.keys() == {"inventory"} and outcome.transient
    retry_at = NOW + runs.retry_delay(1)
    status = runs.run_status(outcome, {}, now=NOW, next_at=NOW + timedelta(hours=6), retry=(1, retry_at))
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["reason"] == "TransientError"
    assert "retry 1 at 2024-06-15T00:01:00Z" in conditions["Ready"]["message"]
    assert conditions["DataSourcesReady"]["status"] == "False"
    assert status["nextRunTime"] == "2024-06-15T00:01:00Z"
    assert "findings" not in status, "no data: the last findings count stays"
    assert [e[1] for e in runs.run_events(outcome)] == ["RunFailed", "InventoryFailed"]


def test_a_setup_error_is_permanent(store, tmp_path):
    def build(policy, api_client, *, workdir, approved):
        raise ConfigError("the operator may not read Secret finops-system/token (403)", source=policy.source,
                          field="spec.git.tokenSecretRef")
    outcome = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=build)
    assert not outcome.transient and outcome.permanent == {"setup": True}
    ready = {c["type"]: c for c in runs.run_status(outcome, None, now=NOW, next_at=NOW + timedelta(hours=6))
             ["conditions"]}["Ready"]
    assert ready["reason"] == "PermanentError" and "spec.git.tokenSecretRef" in ready["message"]
    assert "next scheduled run at 2024-06-15T06:00:00Z" in ready["message"]


def test_a_ledger_that_cannot_be_saved_is_reported(store, tmp_path):
    store.fail = True
    outcome = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path,
                               build=wiring_with(lambda window: over_requested_state()))
    assert "ledger" in outcome.errors and "503" in outcome.errors["ledger"] and outcome.transient


@pytest.mark.parametrize("error, permanent", [
    (ProviderRefused("GitHub token invalid or expired (401 Bad credentials) while trying to open"), True),
    (ProviderRefused("base branch 'mian' does not exist; set the policy's base branch"), True),
    (ProviderError("GitHub server error 502 while trying to push; try again later"), False),
    # The words do not matter, the class does: a 401 in a transient error's text stays transient.
    (ProviderError("git push timed out after 120s (last answer: 401)"), False),
    (DataSourceError("Prometheus unavailable after 3 attempts: cannot connect"), False),
    (DataSourceRefused("query rejected: bad_data"), True),
    (ConfigError("window end is not after start (at a 3600s step)"), True),
    (KeyError(97), True),
])
def test_permanent_or_transient_by_class(error, permanent):
    assert runs.is_permanent(error) is permanent


def test_a_config_error_inside_a_stage_stays_permanent(store, tmp_path):
    """A window shorter than the step fails in the inventory stage as a ConfigError: not retried as transient."""
    def short(window):
        raise ConfigError("window end is not after start (at a 3600s step)", field="window")
    outcome = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=wiring_with(short))
    assert outcome.errors.keys() == {"inventory"} and outcome.permanent == {"inventory": True}
    assert not outcome.transient


def test_a_bug_inside_a_stage_is_not_retried_as_transient(store, tmp_path):
    def buggy(window):
        return {}[97]
    outcome = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=wiring_with(buggy))
    assert outcome.errors == {"inventory": "KeyError: 97"} and not outcome.transient


def test_the_classifier_reads_no_messages():
    source = Path(runs.__file__).read_text()
    assert "import re" not in source and "re.compile" not in source


def test_backoff_doubles_and_is_capped():
    assert [runs.retry_delay(n).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]
    assert runs.retry_delay(30).total_seconds() == 3600
    assert runs.retry_delay(2, base=1).total_seconds() == 2


def test_a_poisoned_or_unreadable_opportunity_never_stops_the_policy(store, tmp_path):
    """Issue 7 #4: `kubectl annotate fsav X finops.dev/ledger={"estimated":"lots"}` failed every run."""
    build = wiring_with(lambda window: over_requested_state())
    runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=build)
    (name, obj), = store.objects.items()
    obj["metadata"]["annotations"]["finops.dev/ledger"] = '{"estimated":"lots"}'
    other = copy.deepcopy(obj)
    other["metadata"]["name"], other["metadata"]["labels"]["finops.dev/opportunity-id"] = "p-other", "other"
    other["status"]["history"] = "x"
    store.objects["p-other"] = other
    broken = copy.deepcopy(other)
    outcome = runs.execute_run(policy_spec(), None, now=NOW + timedelta(days=1), workdir=tmp_path, build=build)
    assert outcome.ok, outcome.errors
    assert set(outcome.unreadable) == {"p-other"} and "status.history" in outcome.unreadable["p-other"]
    assert store.objects["p-other"] == broken, "an unreadable object is left for a person, never overwritten"
    assert '"estimated":' in store.objects[name]["metadata"]["annotations"]["finops.dev/ledger"]
    events = runs.run_events(outcome)
    kinds = [e[1] for e in events]
    assert kinds[0] == "RunSucceeded" and "OpportunityUnreadable" in kinds and "OpportunityRepaired" in kinds
    unreadable = next(e for e in events if e[1] == "OpportunityUnreadable")
    assert "p-other" in unreadable[2] and "status.history" in unreadable[2]
    repaired = next(e for e in events if e[1] == "OpportunityRepaired")
    assert name in repaired[2] and "finops.dev/ledger].estimated" in repaired[2]
    ready = {c["type"]: c for c in runs.run_status(outcome, {}, now=NOW, next_at=NOW + timedelta(hours=6))
             ["conditions"]}["Ready"]
    assert ready["status"] == "True" and "1 unreadable SavingsOpportunity skipped" in ready["message"]


def test_retry_delay_is_bounded_for_any_attempt_an_annotation_can_hold() -> None:
    """finops.dev/retry is user-editable: {"attempt": 99999999999999999999} once froze the whole operator."""
    started = time.monotonic()
    assert runs.retry_delay(10 ** 20).total_seconds() == 3600
    assert runs.retry_delay(-5).total_seconds() == 60
    assert time.monotonic() - started < 1
