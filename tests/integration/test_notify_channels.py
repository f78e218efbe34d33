"""Every channel against a loopback server that validates the service's documented payload (tests/support/chat_emulators).

Retries, Retry-After, 5xx, slow servers and secrets are checked against the same real servers.
"""
from __future__ import annotations

import email
import email.policy
import json
import logging
import time
import urllib.error
import urllib.request
from email.utils import formatdate

import pytest

from finops_operator.models.insights import Category, Evidence, Insight, Persona, Priority
from finops_operator.notify import ChannelConfig, ChannelType, Message, Outcome, RetryPolicy, send
from tests.support import chat_emulators as emu
from tests.support.kubecerts import generate
from tests.support.prometheus_server import free_port

pytestmark = pytest.mark.integration

SECRET = "Zq7hooksSECRETpart9x4"          # the part of a webhook URL that is a credential
FAST = RetryPolicy(attempts=4, timeout=2.0, base=0.05, cap=0.2, total=15.0)
ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32"


def insight(n: int = 1, priority: Priority = Priority.HIGH, title: str = "web is idle <prod>") -> Insight:
    return Insight(id=f"idle-web-{n}", persona=Persona.ENGINEER, title=title,
                   description="CPU used 0.2% of requested over 14 days & memory 5%.", priority=priority,
                   category=Category.EFFICIENCY, impact=120.0 * n, recommendation="Scale requests down to 100m.",
                   evidence=(Evidence("PullRequest", "shop#12", "https://github.example/shop/pull/12"),))


def messages() -> list[Message]:
    return [Message.from_insights([insight()]),
            Message.from_insights([insight(n, Priority.LOW) for n in range(2, 30)], digest_title="Daily digest")]


@pytest.fixture
def server(request):
    started = []

    def start(emulator: emu.Emulator) -> emu.Emulator:
        started.append(emulator.start())
        return emulator
    yield start
    for emulator in started:
        emulator.stop()


def assert_no_secret(*texts: object, secrets=(SECRET,)) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in str(text), f"secret leaked into {text!r}"


# ------------------------------------------------------------------------------------ each channel sends


def test_slack_webhook_sends_block_kit(server):
    hook = server(emu.slack_webhook(f"/services/T0001/B0001/{SECRET}"))
    config = ChannelConfig(type=ChannelType.SLACK, name="ops/slack", url=f"{hook.url}/services/T0001/B0001/{SECRET}",
                           retry=FAST)
    receipts = send(config, messages())
    assert [(r.outcome, r.status, r.attempts) for r in receipts] == [(Outcome.SENT, 200, 1)] * 2
    first, digest = hook.accepted
    assert first["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "web is idle <prod>"}}
    assert "&amp;" in first["blocks"][1]["text"]["text"]            # mrkdwn escaped
    assert first["blocks"][-1]["elements"][0]["url"] == "https://github.example/shop/pull/12"
    assert "... and 8 more" in digest["blocks"][1]["text"]["text"]
    assert receipts[1].dedup_key.startswith("digest-")


def test_slack_api_posts_and_reports_refusals(server):
    api = server(emu.slack_api("xoxb-1111-2222-abcdefABCDEF", {"C0FINOPS"}))
    good = ChannelConfig(type=ChannelType.SLACK_API, token="xoxb-1111-2222-abcdefABCDEF", channel="C0FINOPS",
                         slack_api_url=f"{api.url}/api/chat.postMessage", retry=FAST)
    assert [r.outcome for r in send(good, messages())] == [Outcome.SENT, Outcome.SENT]
    assert api.accepted[0]["channel"] == "C0FINOPS"
    bad = ChannelConfig(type=ChannelType.SLACK_API, token="xoxb-9999-9999-wrongWRONGwrong", channel="C0FINOPS",
                        slack_api_url=f"{api.url}/api/chat.postMessage", retry=FAST)
    [receipt] = send(bad, messages()[:1])
    assert (receipt.outcome, receipt.status, receipt.attempts) == (Outcome.FAILED, 200, 1)
    assert "invalid_auth" in receipt.reason
    assert_no_secret(receipt, secrets=("xoxb-9999-9999-wrongWRONGwrong",))
    wrong_channel = ChannelConfig(type=ChannelType.SLACK_API, token="xoxb-1111-2222-abcdefABCDEF", channel="C0NOPE",
                                  slack_api_url=f"{api.url}/api/chat.postMessage", retry=FAST)
    assert "channel_not_found" in send(wrong_channel, messages()[:1])[0].reason


def test_teams_workflow_gets_an_adaptive_card(server):
    teams = server(emu.teams_workflow(f"/workflows/{SECRET}/triggers/manual/paths/invoke"))
    config = ChannelConfig(type=ChannelType.TEAMS, url=f"{teams.url}/workflows/{SECRET}/triggers/manual/paths/invoke",
                           retry=FAST)
    receipts = send(config, messages())
    assert [(r.outcome, r.status) for r in receipts] == [(Outcome.SENT, 202)] * 2
    card = teams.accepted[0]["attachments"][0]["content"]
    assert card["version"] == "1.4" and card["body"][0]["text"] == "web is idle <prod>"
    assert {"title": "Impact", "value": "$120.00/month"} in card["body"][2]["facts"]
    assert card["actions"][0] == {"type": "Action.OpenUrl", "title": "PullRequest shop#12",
                                  "url": "https://github.example/shop/pull/12"}


def test_pagerduty_triggers_then_resolves_under_one_dedup_key(server):
    pd = server(emu.pagerduty(ROUTING_KEY))
    config = ChannelConfig(type=ChannelType.PAGERDUTY, routing_key=ROUTING_KEY, source="finops-operator/prod",
                           pagerduty_url=f"{pd.url}/v2/enqueue", retry=FAST)
    alert = Message.from_insights([insight(priority=Priority.CRITICAL)])
    resolved = Message(**{**{f: getattr(alert, f) for f in alert.__slots__}, "resolve": True})
    receipts = send(config, [alert, resolved])
    assert [(r.outcome, r.status) for r in receipts] == [(Outcome.SENT, 202)] * 2
    trigger, resolve = pd.accepted
    assert trigger["event_action"] == "trigger" and trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "finops-operator/prod"
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": trigger["dedup_key"]}
    wrong = ChannelConfig(type=ChannelType.PAGERDUTY, routing_key="short-key", pagerduty_url=f"{pd.url}/v2/enqueue",
                          retry=FAST)
    [refused] = send(wrong, [alert])
    assert (refused.outcome, refused.status, refused.attempts) == (Outcome.FAILED, 400, 1)
    assert "routing_key" in refused.reason


def test_webhook_is_signed_and_a_wrong_secret_is_refused(server):
    hook = server(emu.signed_webhook(f"/hook/{SECRET}", "hmac-secret-value-1"))
    good = ChannelConfig(type=ChannelType.WEBHOOK, url=f"{hook.url}/hook/{SECRET}", hmac_secret="hmac-secret-value-1",
                         retry=FAST)
    assert [r.outcome for r in send(good, messages())] == [Outcome.SENT] * 2
    assert hook.accepted[0]["id"] == "idle-web-1" and hook.accepted[0]["priority"] == "high"
    assert hook.requests[0].headers["x-finops-signature"].startswith("sha256=")
    bad = ChannelConfig(type=ChannelType.WEBHOOK, url=f"{hook.url}/hook/{SECRET}", hmac_secret="not-the-secret",
                        retry=FAST)
    [receipt] = send(bad, messages()[:1])
    assert (receipt.outcome, receipt.status, receipt.attempts) == (Outcome.FAILED, 401, 1)
    assert_no_secret(receipt, secrets=(SECRET, "not-the-secret"))


def test_email_over_starttls_with_auth_carries_plain_and_html_parts(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    certs = generate(tmp_path / "certs")
    controller, box = emu.smtp_server(certs, "finops", "smtp-pass-word-1")
    try:
        config = ChannelConfig(type=ChannelType.EMAIL, smtp_host="127.0.0.1", smtp_port=controller.port,
                               smtp_user="finops", smtp_password="smtp-pass-word-1", email_from="finops@example.com",
                               email_to=("cfo@example.com", "eng@example.com"), smtp_ca=str(certs.ca_cert), retry=FAST)
        [receipt] = send(config, messages()[:1])
        assert (receipt.outcome, receipt.status) == (Outcome.SENT, 250), receipt.reason
        assert box.logins == [("finops", True)]
        sender, rcpts, raw = box.mails[0]
        assert (sender, rcpts) == ("finops@example.com", ["cfo@example.com", "eng@example.com"])
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        assert mail.get_content_type() == "multipart/alternative"
        assert mail["Subject"] == "[high] web is idle <prod>"
        plain = mail.get_body(("plain",)).get_content()
        page = mail.get_body(("html",)).get_content()
        assert "web is idle <prod>" in plain and "Impact: $120.00/month" in plain
        assert "<h2>web is idle &lt;prod&gt;</h2>" in page and "&amp; memory" in page
        assert '<a href="https://github.example/shop/pull/12">' in page

        wrong = ChannelConfig(type=ChannelType.EMAIL, smtp_host="127.0.0.1", smtp_port=controller.port,
                              smtp_user="finops", smtp_password="wrong-pass-word-2", email_from="finops@example.com",
                              email_to=("cfo@example.com",), smtp_ca=str(certs.ca_cert), retry=FAST)
        [refused] = send(wrong, messages()[:1])
        assert (refused.outcome, refused.status, refused.attempts) == (Outcome.FAILED, 535, 1)
        assert_no_secret(refused, secrets=("wrong-pass-word-2",))
        assert len(box.mails) == 1

        untrusted = ChannelConfig(type=ChannelType.EMAIL, smtp_host="127.0.0.1", smtp_port=controller.port,
                                  smtp_user="finops", smtp_password="smtp-pass-word-1", email_from="f@example.com",
                                  email_to=("cfo@example.com",), retry=FAST)
        [tls] = send(untrusted, messages()[:1])
        assert tls.outcome is Outcome.FAILED and "TLS failed" in tls.reason and len(box.mails) == 1
        assert_no_secret(caplog.text, tls, secrets=("smtp-pass-word-1", "wrong-pass-word-2"))
    finally:
        controller.stop()


# ------------------------------------------------------------------------------------ retries and failures


def _hook(server, policy: RetryPolicy = FAST):
    hook = server(emu.slack_webhook(f"/services/T0001/B0001/{SECRET}"))
    return hook, ChannelConfig(type=ChannelType.SLACK, url=f"{hook.url}/services/T0001/B0001/{SECRET}", retry=policy)


def test_429_with_retry_after_seconds_is_honoured(server):
    hook, config = _hook(server)
    hook.script(("429", 1))
    [receipt] = send(config, messages()[:1])
    assert (receipt.outcome, receipt.attempts) == (Outcome.SENT, 2)
    gap = hook.requests[1].at - hook.requests[0].at
    assert 0.95 <= gap < 2.5, gap          # waited what the service asked, not the 0.05 s backoff


def test_429_with_retry_after_http_date_is_honoured(server):
    hook, config = _hook(server)
    hook.script(("429", formatdate(time.time() + 2, usegmt=True)))
    [receipt] = send(config, messages()[:1])
    assert (receipt.outcome, receipt.attempts) == (Outcome.SENT, 2)
    gap = hook.requests[1].at - hook.requests[0].at
    assert 0.9 <= gap < 3.5, gap           # an HTTP date has whole seconds


def test_retry_after_past_the_budget_ends_as_rate_limited_at_once(server):
    hook, config = _hook(server, RetryPolicy(attempts=4, timeout=2.0, base=0.05, cap=0.2, total=3.0))
    hook.script(("429", 120))
    began = time.monotonic()
    [receipt] = send(config, messages()[:1])
    assert (receipt.outcome, receipt.status, receipt.attempts) == (Outcome.RATE_LIMITED, 429, 1)
    assert "asked to wait 120s" in receipt.reason
    assert time.monotonic() - began < 1.5


def test_5xx_is_retried_with_backoff_then_fails_with_a_receipt(server):
    hook, config = _hook(server)
    hook.script(*[("503", None)] * 4)
    [receipt] = send(config, messages()[:1])
    assert (receipt.outcome, receipt.status, receipt.attempts) == (Outcome.FAILED, 503, 4)
    assert len(hook.requests) == 4 and not hook.accepted
    assert "answered 503" in receipt.reason and "after 4 attempts" in receipt.reason
    hook.script(("500", None), ("502", None))
    [recovered] = send(config, messages()[:1])
    assert (recovered.outcome, recovered.attempts) == (Outcome.SENT, 3)


def test_4xx_is_not_retried(server):
    hook, config = _hook(server)
    broken = ChannelConfig(type=ChannelType.SLACK, url=f"{hook.url}/services/T0001/B0001/revoked", retry=FAST)
    [receipt] = send(broken, messages()[:1])
    assert (receipt.outcome, receipt.status, receipt.attempts) == (Outcome.FAILED, 404, 1)
    assert "no_service" in receipt.reason and len(hook.requests) == 1


def test_a_slow_server_times_out_within_the_bound(server):
    hook, _ = _hook(server)
    config = ChannelConfig(type=ChannelType.SLACK, url=f"{hook.url}/services/T0001/B0001/{SECRET}",
                           retry=RetryPolicy(attempts=2, timeout=0.5, base=0.05, cap=0.1, total=5.0))
    hook.script(("slow", 2.0), ("slow", 2.0))
    began = time.monotonic()
    [receipt] = send(config, messages()[:1])
    assert (receipt.outcome, receipt.status, receipt.attempts) == (Outcome.FAILED, None, 2)
    assert "timeout" in receipt.reason
    assert time.monotonic() - began < 2.0
    hook.script(("slow", 2.0))                       # slow once, then fine
    assert send(config, messages()[:1])[0].outcome is Outcome.SENT


def test_the_total_budget_bounds_a_delivery(server):
    hook, _ = _hook(server)
    config = ChannelConfig(type=ChannelType.SLACK, url=f"{hook.url}/services/T0001/B0001/{SECRET}",
                           retry=RetryPolicy(attempts=50, timeout=1.0, base=0.2, cap=0.4, total=2.0))
    hook.script(*[("500", None)] * 50)
    began = time.monotonic()
    [receipt] = send(config, messages()[:1])
    assert receipt.outcome is Outcome.FAILED and 1 < receipt.attempts < 50
    assert time.monotonic() - began < 3.0


def test_secrets_never_reach_receipts_logs_or_repr(server, caplog):
    caplog.set_level(logging.DEBUG)
    hook, config = _hook(server)
    hook.script(("503", 0), ("500", None), ("500", None), ("429", None))    # ends rate limited
    closed = ChannelConfig(type=ChannelType.WEBHOOK, url=f"http://127.0.0.1:{free_port()}/hook/{SECRET}",
                           hmac_secret="hmac-secret-value-1", retry=FAST)
    pd = ChannelConfig(type=ChannelType.PAGERDUTY, routing_key=ROUTING_KEY, retry=FAST,
                       pagerduty_url=f"http://127.0.0.1:{free_port()}/v2/enqueue")
    receipts = send(config, messages()[:1]) + send(closed, messages()[:1]) + send(pd, messages()[:1])
    assert [r.outcome for r in receipts] == [Outcome.RATE_LIMITED, Outcome.FAILED, Outcome.FAILED]
    assert "cannot connect" in receipts[1].reason
    assert caplog.records, "deliveries are logged"
    assert_no_secret(receipts, caplog.text, repr(config), str(closed), repr(pd),
                     secrets=(SECRET, "hmac-secret-value-1", ROUTING_KEY))
    assert "127.0.0.1" in caplog.text           # the endpoint's host is shown, its path is not


def _post(url: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_emulators_refuse_what_the_services_refuse():
    """The emulators must fail bad payloads, or the integration tests prove nothing."""
    started = [emu.slack_webhook("/s").start(), emu.pagerduty("k" * 32).start(), emu.signed_webhook("/h", "sec").start(),
               emu.teams_workflow("/t").start(), emu.slack_api("xoxb-t", {"C1"}).start()]
    hook, pd, signed, workflow, api = started
    try:
        section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
        assert _post(hook.url + "/s", {"text": "x", "blocks": [section] * 51}) == (400, "invalid_blocks")
        assert _post(hook.url + "/s", {"text": "x" * 40_001}) == (400, "msg_too_long")
        assert _post(hook.url + "/s", {"blocks": []}) == (400, "no_text")
        assert _post(hook.url + "/s", b"not json") == (400, "invalid_payload")
        assert _post(hook.url + "/other", {"text": "x"}) == (404, "no_service")
        assert _post(hook.url + "/s", {"text": "x", "blocks": [{"type": "header", "text": {
            "type": "mrkdwn", "text": "x"}}]}) == (400, "invalid_blocks")
        good = {"routing_key": "k" * 32, "event_action": "trigger",
                "payload": {"summary": "s", "source": "src", "severity": "error"}}
        assert _post(pd.url + "/v2/enqueue", good)[0] == 202
        assert "routing_key" in _post(pd.url + "/v2/enqueue", {k: v for k, v in good.items() if k != "routing_key"})[1]
        assert "severity" in _post(pd.url + "/v2/enqueue", {**good, "payload": {**good["payload"], "severity": "high"}})[1]
        assert "summary" in _post(pd.url + "/v2/enqueue", {**good, "payload": {**good["payload"], "summary": "s" * 1025}})[1]
        assert _post(pd.url + "/v2/enqueue", {"routing_key": "k" * 32, "event_action": "resolve"})[0] == 400
        assert _post(signed.url + "/h", {"id": "1", "title": "t", "text": "x", "priority": "low"})[0] == 401
        assert _post(signed.url + "/h", {"id": "1"}, {"X-Finops-Timestamp": "1", "X-Finops-Signature": "sha256=0"})[0] == 401
        assert _post(workflow.url + "/t", {"type": "message", "attachments": []})[0] == 400
        assert _post(workflow.url + "/t", {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard"}}]})[0] == 400
        assert json.loads(_post(api.url + "/api/chat.postMessage", {"channel": "C1", "text": "x"})[1]) == {
            "ok": False, "error": "not_authed"}
        assert not any(e.accepted for e in started[2:]) and len(pd.accepted) == 1 and not hook.accepted
    finally:
        for e in started:
            e.stop()
