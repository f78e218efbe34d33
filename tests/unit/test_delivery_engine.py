"""The delivery engine's decisions: thresholds, dedup, batching by size and interval, rate limits per hour,
quiet hours across midnight and DST (Europe/Berlin spring and autumn), critical bypass, failures with
back-off, a restart mid-batch (state through the codec) losing and duplicating nothing."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from finops_operator.delivery import engine
from finops_operator.delivery.codec import decode, encode
from finops_operator.delivery.digest import digest, messages
from finops_operator.delivery.model import Outcome, QueueState, Route, Subscription
from finops_operator.models.insights import Category, Insight, Persona, Priority
from finops_operator.settings import ChangeWindow

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ALL_DAYS = [0, 1, 2, 3, 4, 5, 6]
BERLIN_NIGHT = ChangeWindow(days=ALL_DAYS, start="22:00", end="07:00", time_zone="Europe/Berlin")


def insight(n: int, priority: Priority = Priority.LOW, persona: Persona = Persona.CFO) -> Insight:
    return Insight(f"i{n}", persona, f"title {n}", f"description {n}", priority, Category.BUDGET)


def sub(**kw) -> Subscription:
    base = dict(name="ns/cfo", persona=Persona.CFO, routes=(Route("slack"),), batch_size=3,
                batch_interval=timedelta(hours=1), rate_per_hour=0)
    return Subscription(**{**base, **kw})


def queued(subscription: Subscription, insights: list[Insight], now: datetime = T0,
           state: QueueState | None = None) -> QueueState:
    items, _ = engine.route(insights, [subscription], now)
    state, _ = engine.enqueue(state or QueueState("slack"), items, now)
    return state


def deliver_all(state: QueueState, subs: list[Subscription], now: datetime) -> tuple[QueueState, list]:
    plan = engine.due(state, subs, now)
    for attempt in plan.attempts:
        state = engine.complete(engine.begin(state, attempt), attempt.id, now)
    return state, list(plan.attempts)


def sent_ids(attempts) -> list[str]:
    return sorted(i.id for a in attempts for i in a.items)


# --------------------------------------------------------------------------- routing and dedup


def test_below_threshold_is_dropped_and_other_personas_ignored():
    s = sub(routes=(Route("slack", Priority.HIGH), Route("pager", Priority.CRITICAL)))
    items, dropped = engine.route([insight(1, Priority.HIGH), insight(2, Priority.LOW),
                                   insight(3, Priority.CRITICAL, Persona.ENGINEER)], [s], T0)
    assert [(i.id, i.channel) for i in items] == [("i1", "slack")]
    assert {(d.item_id, d.channel, d.outcome) for d in dropped} == {
        ("i1", "pager", Outcome.BELOW_THRESHOLD), ("i2", "slack", Outcome.BELOW_THRESHOLD),
        ("i2", "pager", Outcome.BELOW_THRESHOLD)}


def test_same_insight_is_never_queued_or_sent_twice():
    s = sub()
    state = queued(s, [insight(1, Priority.HIGH)])
    items, _ = engine.route([insight(1, Priority.HIGH)], [s], T0)
    again, decisions = engine.enqueue(state, items, T0)
    assert [d.outcome for d in decisions] == [Outcome.DUPLICATE] and len(again.pending) == 1
    state, attempts = deliver_all(state, [s], T0)
    assert sent_ids(attempts) == ["i1"] and not state.pending
    later, decisions = engine.enqueue(state, items, T0 + timedelta(days=1))
    assert [d.outcome for d in decisions] == [Outcome.DUPLICATE] and not later.pending
    state, attempts = deliver_all(later, [s], T0 + timedelta(days=1))
    assert attempts == []


# --------------------------------------------------------------------------- batching


def test_low_priority_batches_until_the_batch_is_full():
    s = sub(batch_size=3)
    state = queued(s, [insight(1), insight(2)])
    plan = engine.due(state, [s], T0)
    assert plan.attempts == () and {d.outcome for d in plan.held} == {Outcome.BATCHED}
    assert plan.wake == T0 + timedelta(hours=1)
    state = queued(s, [insight(3, Priority.MEDIUM)], T0 + timedelta(minutes=5), state)
    state, attempts = deliver_all(state, [s], T0 + timedelta(minutes=5))
    assert len(attempts) == 1 and attempts[0].digest and sent_ids(attempts) == ["i1", "i2", "i3"]
    assert state.stats.total(Outcome.SENT) == 3


def test_a_partial_batch_goes_when_its_oldest_item_waited_the_interval():
    s = sub(batch_size=10, batch_interval=timedelta(minutes=30))
    state = queued(s, [insight(1)])
    state = queued(s, [insight(2)], T0 + timedelta(minutes=20), state)
    assert engine.due(state, [s], T0 + timedelta(minutes=29)).attempts == ()
    state, attempts = deliver_all(state, [s], T0 + timedelta(minutes=30))
    assert sent_ids(attempts) == ["i1", "i2"] and attempts[0].digest


def test_high_priority_is_not_batched():
    s = sub(batch_size=10)
    state = queued(s, [insight(1, Priority.HIGH), insight(2)])
    plan = engine.due(state, [s], T0)
    assert sent_ids(plan.attempts) == ["i1"] and not plan.attempts[0].digest
    assert [(d.item_id, d.outcome) for d in plan.held] == [("i2", Outcome.BATCHED)]


def test_digest_lists_highest_priority_first():
    s = sub(batch_size=2)
    state = queued(s, [insight(1, Priority.LOW), insight(2, Priority.MEDIUM)])
    (attempt,) = engine.due(state, [s], T0).attempts
    (message,) = messages(attempt)
    assert message.title == "2 insights for cfo" and message.priority is Priority.MEDIUM
    assert message.text.splitlines() == ["[medium] title 2", "[low] title 1"]
    assert message.dedup_key == attempt.id and message.item_ids == ("i2", "i1")
    assert digest(attempt.items, "k").text == message.text


# --------------------------------------------------------------------------- rate limits


def test_rate_limit_holds_until_the_hour_frees_and_loses_nothing():
    s = sub(rate_per_hour=2)
    state = queued(s, [insight(n, Priority.HIGH) for n in (1, 2, 3)])
    plan = engine.due(state, [s], T0)
    assert len(plan.attempts) == 2
    assert [(d.outcome, d.until) for d in plan.held] == [(Outcome.RATE_LIMITED, T0 + timedelta(hours=1))]
    state, _ = deliver_all(state, [s], T0)
    assert engine.due(state, [s], T0 + timedelta(minutes=59)).attempts == ()
    state, attempts = deliver_all(state, [s], T0 + timedelta(hours=1))
    assert sent_ids(attempts) == ["i3"] and not state.pending


def test_a_digest_counts_once_and_critical_is_not_rate_limited():
    s = sub(rate_per_hour=2, batch_size=3)          # the digest and the critical item fill the hour
    state = queued(s, [insight(1), insight(2), insight(3), insight(4, Priority.CRITICAL)])
    state, attempts = deliver_all(state, [s], T0)
    assert sorted(len(a.items) for a in attempts) == [1, 3]
    state = queued(s, [insight(5, Priority.CRITICAL), insight(6, Priority.HIGH)], T0, state)
    plan = engine.due(state, [s], T0)
    assert sent_ids(plan.attempts) == ["i5"]
    assert [(d.item_id, d.outcome) for d in plan.held] == [("i6", Outcome.RATE_LIMITED)]


# --------------------------------------------------------------------------- quiet hours


def berlin(y, mo, d, h, mi=0) -> datetime:
    from zoneinfo import ZoneInfo
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(("now", "ends"), [
    (berlin(2026, 6, 1, 23), berlin(2026, 6, 2, 7)),           # before midnight
    (berlin(2026, 6, 2, 3), berlin(2026, 6, 2, 7)),            # after midnight
    (berlin(2026, 3, 28, 23), berlin(2026, 3, 29, 7)),         # spring forward 02:00 -> 03:00 (a 8-hour night)
    (berlin(2026, 10, 24, 23), berlin(2026, 10, 25, 7)),       # fall back 03:00 -> 02:00 (a 10-hour night)
])
def test_quiet_hours_hold_until_they_end_across_midnight_and_dst(now, ends):
    s = sub(quiet=BERLIN_NIGHT)
    state = queued(s, [insight(1, Priority.HIGH)], now)
    plan = engine.due(state, [s], now)
    assert plan.attempts == ()
    assert [(d.outcome, d.until) for d in plan.held] == [(Outcome.SUPPRESSED, ends)]
    assert plan.wake == ends
    assert engine.due(state, [s], ends - timedelta(seconds=1)).attempts == ()
    state, attempts = deliver_all(state, [s], ends)
    assert sent_ids(attempts) == ["i1"] and not state.pending


@pytest.mark.parametrize(("evening", "hours"), [((2026, 3, 28), 8), ((2026, 6, 1), 9), ((2026, 10, 24), 10)])
def test_quiet_night_lengths_follow_dst(evening, hours):
    s = sub(quiet=BERLIN_NIGHT)
    start = berlin(*evening, 22).astimezone(UTC)
    (held,) = engine.due(queued(s, [insight(1, Priority.HIGH)], start), [s], start).held
    assert held.until.astimezone(UTC) - start == timedelta(hours=hours)


def test_outside_quiet_hours_nothing_is_held_and_critical_bypasses_them():
    s = sub(quiet=BERLIN_NIGHT)
    assert sent_ids(engine.due(queued(s, [insight(1, Priority.HIGH)]), [s], berlin(2026, 6, 1, 21, 59)).attempts) \
        == ["i1"]
    night = berlin(2026, 6, 1, 23)
    plan = engine.due(queued(s, [insight(1, Priority.CRITICAL), insight(2)], night), [s], night)
    assert sent_ids(plan.attempts) == ["i1"]
    assert [(d.item_id, d.outcome) for d in plan.held] == [("i2", Outcome.SUPPRESSED)]


def test_batch_due_during_quiet_hours_goes_when_they_end():
    s = sub(quiet=BERLIN_NIGHT, batch_size=2)
    night = berlin(2026, 6, 1, 23)
    state = queued(s, [insight(1), insight(2)], night)
    assert engine.due(state, [s], night).attempts == ()
    state, attempts = deliver_all(state, [s], berlin(2026, 6, 2, 7))
    assert len(attempts) == 1 and sent_ids(attempts) == ["i1", "i2"]


# --------------------------------------------------------------------------- failures and restarts


def test_failure_backs_off_then_gives_up_with_a_receipt():
    s = sub()
    state = queued(s, [insight(1, Priority.HIGH)])
    now = T0
    for n in range(engine.MAX_FAILURES):
        (attempt,) = engine.due(state, [s], now).attempts
        state = engine.fail(engine.begin(state, attempt), attempt.id, "HTTP 503 from the service", now)
        if n + 1 < engine.MAX_FAILURES:
            (item,) = state.pending
            assert item.not_before == now + engine.RETRY_BASE * 2 ** n
            assert engine.due(state, [s], now).attempts == ()
            now = item.not_before
    assert not state.pending and not state.sending
    assert state.receipts[-1].outcome is Outcome.FAILED and state.receipts[-1].reason.endswith("given up")
    assert state.stats.total(Outcome.FAILED) == engine.MAX_FAILURES and state.last_error == "HTTP 503 from the service"


def restart(state: QueueState) -> QueueState:
    """What a new operator process sees: only what was stored."""
    return decode(encode(state))


@pytest.mark.parametrize("idempotent", [True, False])
def test_restart_mid_batch_loses_and_duplicates_nothing(idempotent):
    s = sub(batch_size=2)
    state = queued(s, [insight(n) for n in range(1, 7)])      # three digests of two
    plan = engine.due(state, [s], T0)
    assert len(plan.attempts) == 3
    delivered: list[str] = []
    first, second, _third = plan.attempts
    state = engine.begin(state, first)                         # stored "sending"
    delivered += [i.id for i in first.items]                   # the service got it
    state = engine.complete(state, first.id, T0)               # receipt stored
    state = engine.begin(state, second)                        # stored "sending", then the process dies
    if idempotent:
        delivered += [i.id for i in second.items]              # it did arrive before the crash
    state = restart(state)
    state, resend = engine.recover(state, idempotent=idempotent, now=T0 + timedelta(minutes=1))
    for attempt in resend:                                     # same attempt id = same dedup key: the service
        assert attempt.id == second.id                         # drops the copy, so nothing new arrives
        state = engine.complete(state, attempt.id, T0 + timedelta(minutes=1))
    state, attempts = deliver_all(restart(state), [s], T0 + timedelta(minutes=1))
    delivered += sent_ids(attempts)
    assert sorted(delivered) == sorted(set(delivered))         # nothing twice
    assert not state.pending and not state.sending
    outcomes = {r.outcome for r in state.receipts}
    assert outcomes == ({Outcome.SENT} if idempotent else {Outcome.SENT, Outcome.IN_DOUBT})
    accounted = {k.split("|")[1] for k, _ in state.sent}
    assert accounted == {f"i{n}" for n in range(1, 7)}         # nothing lost: each sent or accounted for


def test_restart_before_sending_was_recorded_sends_everything_once():
    s = sub(batch_size=2)
    state = restart(queued(s, [insight(1), insight(2)]))
    state, attempts = deliver_all(state, [s], T0)
    assert sent_ids(attempts) == ["i1", "i2"]
    state, attempts = deliver_all(restart(state), [s], T0 + timedelta(hours=2))
    assert attempts == []


def test_codec_round_trip_and_bad_blob():
    s = sub(batch_size=2, quiet=BERLIN_NIGHT)
    state = queued(s, [insight(1), insight(2, Priority.CRITICAL)])
    state, _ = deliver_all(state, [s], T0)
    assert restart(state) == state
    with pytest.raises(ValueError, match="unreadable"):
        decode(b"not gzip")


def test_queue_is_bounded_by_dropping_the_oldest_low_priority(monkeypatch):
    monkeypatch.setattr(engine, "MAX_PENDING", 3)
    s = sub(batch_size=100)
    state = queued(s, [insight(1, Priority.HIGH), insight(2), insight(3), insight(4, Priority.MEDIUM)])
    assert [i.id for i in state.pending] == ["i1", "i3", "i4"]
    assert state.receipts[-1].outcome is Outcome.DROPPED and state.receipts[-1].item_ids == ("i2",)
