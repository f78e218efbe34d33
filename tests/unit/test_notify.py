"""notify without a network: messages from insights, configuration, Retry-After and backoff, payload limits.

Payloads are checked with the same validators the loopback emulators use (tests/support/chat_emulators.py).
"""
from __future__ import annotations

import json

import pytest

from finops_operator.errors import ConfigError
from finops_operator.models.insights import Category, Evidence, Insight, Persona, Priority
from finops_operator.notify import ChannelConfig, ChannelType, Message, Outcome, Receipt, RetryPolicy
from finops_operator.notify import mail, pagerduty, slack, teams, webhook
from finops_operator.notify.transport import backoff, retry_after
from tests.support import chat_emulators as emu


def insight(n: int, priority: Priority = Priority.MEDIUM, persona: Persona = Persona.CFO, **kw) -> Insight:
    return Insight(id=f"i-{n:03d}", persona=persona, title=kw.pop("title", f"insight {n}"),
                   description=kw.pop("description", f"description {n}"), priority=priority,
                   category=Category.COST_OPTIMIZATION, impact=kw.pop("impact", float(n)), **kw)


def test_one_insight_is_one_message_with_its_fields_and_links():
    m = Message.from_insights([insight(7, Priority.HIGH, recommendation="Resize.", team="shop", confidence=0.8,
                                       evidence=(Evidence("Budget", "b", "https://x/b"), Evidence("Workload", "w")))])
    assert (m.title, m.priority, m.dedup_key, m.persona, m.insight_ids) == (
        "insight 7", Priority.HIGH, "i-007", Persona.CFO, ("i-007",))
    assert m.text == "description 7\n\nRecommendation: Resize."
    assert dict(m.fields) == {"Priority": "high", "Category": "cost-optimization", "Persona": "cfo",
                              "Impact": "$7.00/month", "Confidence": "80%", "Team": "shop"}
    assert [(link.title, link.url) for link in m.links] == [("Budget b", "https://x/b")]   # no url, no link


def test_a_digest_ranks_counts_and_has_a_stable_key():
    items = [insight(1, Priority.LOW), insight(2, Priority.CRITICAL, persona=Persona.ENGINEER), insight(3)]
    m = Message.from_insights(items, digest_title="Daily")
    again = Message.from_insights(list(reversed(items)), digest_title="Daily")
    assert m.dedup_key == again.dedup_key and m.dedup_key.startswith("digest-")
    assert m.priority is Priority.CRITICAL and m.persona is None          # two personas
    assert m.text.splitlines()[0] == "- [critical] insight 2 ($2.00/month)"
    assert m.fields["By priority"] == "1 critical, 1 medium, 1 low" and m.fields["Impact"] == "$6.00/month"
    assert Message.from_insights(items[:1], digest_title="One").title == "One"
    many = Message.from_insights([insight(n) for n in range(30)])
    assert many.text.endswith("... and 10 more") and many.title == "30 FinOps insights"


def test_no_insights_is_a_config_error():
    with pytest.raises(ConfigError, match="at least one"):
        Message.from_insights([])


def test_config_names_the_missing_field_and_never_shows_secrets():
    with pytest.raises(ConfigError, match="routing_key"):
        ChannelConfig(type=ChannelType.PAGERDUTY)
    with pytest.raises(ConfigError, match="hmac_secret"):
        ChannelConfig(type="Webhook", url="https://h.example/x")
    with pytest.raises(ConfigError, match="not an http"):
        ChannelConfig(type=ChannelType.TEAMS, url="ftp://h.example/x")
    c = ChannelConfig(type="Slack", name="team/slack", url="https://user:pw@hooks.slack.com/services/T1/B1/SeCrEtSeCrEt42")
    assert repr(c) == str(c) == "ChannelConfig(type=Slack, name='team/slack', endpoint='https://hooks.slack.com')"
    assert "SeCrEtSeCrEt42" in " ".join(c.secrets())
    smtp = ChannelConfig(type=ChannelType.EMAIL, smtp_host="smtp.example", email_from="a@x", email_to=["b@x"],
                         smtp_password="hunter2hunter2")
    assert "hunter2" not in repr(smtp) and smtp.email_to == ("b@x",)


@pytest.mark.parametrize("value, expected", [
    ("7", 7.0), (" 0 ", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0), ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ("soon", None), ("", None), (None, None), ("-3", None),
])
def test_retry_after_reads_seconds_and_http_dates(value, expected):
    assert retry_after(value, now=1445412470.0) == expected


def test_backoff_grows_with_jitter_and_stays_capped():
    policy = RetryPolicy(base=1.0, cap=5.0)
    assert [backoff(n, policy, rng=lambda: 1.0) for n in (1, 2, 3, 4, 10**9)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert [backoff(n, policy, rng=lambda: 0.0) for n in (1, 3)] == [0.5, 2.0]


def _huge() -> Message:
    items = [insight(n, title="T" * 300 + " <&>", description="& " * 5000, recommendation="x" * 3000,
                     evidence=tuple(Evidence("PR", f"p{k}", f"https://x/{n}/{k}") for k in range(40)))
             for n in range(60)]
    return Message(**{**{f: getattr(Message.from_insights(items[:1]), f) for f in Message.__slots__},
                      "fields": {f"label {k}": "v" * 5000 for k in range(30)}})


@pytest.mark.parametrize("message", [Message.from_insights([insight(1)]), _huge(),
                                     Message.from_insights([insight(n) for n in range(200)], digest_title="D")])
def test_payloads_stay_inside_each_service_s_documented_limits(message):
    body = slack.payload(message)
    emu.check_blocks(body["blocks"])
    assert emu._slack_message(body) is None
    assert not any(b["text"]["text"].endswith("&am...") for b in body["blocks"] if b["type"] == "section"
                   and "text" in b)
    emu.check_adaptive_card(teams.payload(message)["attachments"][0]["content"])
    event = pagerduty.event(message, routing_key="k" * 32, source="s")
    assert len(event["payload"]["summary"]) <= 1024 and len(event["dedup_key"]) <= 255
    letter = mail.mail(ChannelConfig(type=ChannelType.EMAIL, smtp_host="h", email_from="a@x", email_to=("b@x",)),
                       message)
    assert [p.get_content_type() for p in letter.iter_parts()] == ["text/plain", "text/html"]
    assert "\n" not in letter["Subject"]
    json.dumps(webhook.payload(message))


def test_pagerduty_hashes_an_over_long_dedup_key_and_maps_priorities():
    m = Message.from_insights([insight(1, Priority.LOW)])
    long = Message(**{**{f: getattr(m, f) for f in Message.__slots__}, "dedup_key": "k" * 300})
    assert pagerduty.dedup_key(long).startswith("sha256-") and len(pagerduty.dedup_key(long)) <= 255
    assert pagerduty.event(m, routing_key="r", source="s")["payload"]["severity"] == "info"
    assert set(pagerduty.SEVERITY.values()) == emu.PD_SEVERITIES


def test_webhook_signature_covers_timestamp_and_body():
    assert webhook.signature("s", "1", b"{}") != webhook.signature("s", "2", b"{}")
    assert webhook.signature("s", "1", b"{}").startswith("sha256=") and len(webhook.signature("s", "1", b"")) == 71


def test_a_receipt_round_trips_through_json():
    receipt = Receipt(channel="ops/slack", dedup_key="i-1", outcome=Outcome.RATE_LIMITED, status=429, attempts=3,
                      reason="asked to wait 120s")
    assert Receipt.from_dict(json.loads(json.dumps(receipt.to_dict()))) == receipt
    assert receipt.to_dict()["outcome"] == "rate-limited-by-service" and not receipt.ok
