"""Kubernetes-convention conditions: transition times move only with the status."""
from datetime import UTC, datetime, timedelta, timezone

import pytest
from finops_operator.api.conditions import (
    changed,
    condition,
    get_condition,
    merge_conditions,
    reason_of,
    set_condition,
    timestamp,
)

T0 = datetime(2026, 3, 1, 6, 0, 0, 123456, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def test_timestamp_is_rfc3339_utc_whole_seconds():
    berlin = T0.astimezone(timezone(timedelta(hours=1)))
    assert timestamp(berlin) == "2026-03-01T06:00:00Z"


def test_new_condition_gets_the_transition_time():
    out = set_condition(None, condition("Ready", True, "RunSucceeded", "ok", generation=2), now=T0)
    assert out == [{"type": "Ready", "status": "True", "reason": "RunSucceeded", "message": "ok",
                    "observedGeneration": 2, "lastTransitionTime": "2026-03-01T06:00:00Z"}]


def test_same_status_keeps_transition_time_but_updates_message():
    first = set_condition(None, condition("Ready", False, "TransientError", "prometheus down"), now=T0)
    second = set_condition(first, condition("Ready", False, "TransientError", "still down, retry 2"), now=T1)
    assert second[0]["lastTransitionTime"] == "2026-03-01T06:00:00Z"
    assert second[0]["message"] == "still down, retry 2"
    third = set_condition(second, condition("Ready", True, "RunSucceeded", "ok"), now=T1)
    assert third[0]["lastTransitionTime"] == "2026-03-01T07:00:00Z"
    assert first[0]["message"] == "prometheus down", "the input list must not be modified"


def test_merge_keeps_other_conditions_and_their_order():
    base = merge_conditions(None, [condition("DataSourcesReady", True, "Ok", "a"),
                                   condition("Ready", True, "Ok", "b")], now=T0)
    out = merge_conditions(base, [condition("Ready", False, "PermanentError", "c")], now=T1)
    assert [c["type"] for c in out] == ["DataSourcesReady", "Ready"]
    assert out[0] == base[0]
    assert get_condition(out, "Ready")["status"] == "False"
    assert get_condition(out, "DataSourcesReady")["status"] == "True"
    assert get_condition(out, "Missing") is None


@pytest.mark.parametrize("text, reason", [("RunSucceeded", "RunSucceeded"), ("data source error", "DataSourceError"),
                                          ("publish/shop failed", "PublishShopFailed"), ("401 bad", "Bad"),
                                          ("", "Unknown")])
def test_reasons_are_valid_camel_case(text, reason):
    assert reason_of(text) == reason


def test_status_must_be_true_false_or_unknown():
    assert condition("Ready", None, "Scheduled", "x")["status"] == "Unknown"
    with pytest.raises(ValueError):
        condition("Ready", "yes", "X", "x")


def test_long_messages_are_capped_at_the_crd_limit():
    out = condition("Ready", False, "X", "m" * 40000)
    assert len(out["message"]) == 32768 and out["message"].endswith("...")


def test_changed_ignores_order_and_transition_times():
    a = merge_conditions(None, [condition("A", True, "R", "m"), condition("B", False, "R", "m")], now=T0)
    b = merge_conditions(None, [condition("B", False, "R", "m"), condition("A", True, "R", "m")], now=T1)
    assert not changed(a, b)
    assert changed(a, merge_conditions(a, [condition("A", True, "R", "other")], now=T1))
