"""The one scrubber (defect 13): what it removes, what it keeps, and that status and Events go through it."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from finops_operator.api.conditions import condition
from finops_operator.api.events import event_body
from finops_operator.api.policy import read_policy
from finops_operator.api.runs import RunOutcome, run_events, run_status
from finops_operator.scrub import redact_url, scrub, scrub_secrets

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("text, secret", [
    ("GET http://admin:hunter2@prom:9090/api/v1/query failed", "hunter2"),
    ("GET http://admin:hunter2@prom:9090/api/v1/query failed", "admin"),
    ("clone https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/o/r", "ghp_abcdefghijklmnopqrstuvwxyz0123"),
    ("https://x-access-token:tok-value-123@github.com/o/r", "tok-value-123"),
    ("Authorization: Bearer abcdef123456", "abcdef123456"),
    ("{'Authorization': 'token s3cr3tvalue'}", "s3cr3tvalue"),
    ("GET /api?access_token=qwerty123&x=1", "qwerty123"),
    ("password=hunter2; token: zzz999", "hunter2"),
    ("password=hunter2; token: zzz999", "zzz999"),
    ("Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/ec2/aws4_request", "AKIAIOSFODNN7EXAMPLE"),
    ("key AKIAIOSFODNN7EXAMPLE in a sentence", "AKIAIOSFODNN7EXAMPLE"),
    ("sa token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl", "eyJhbGciOiJSUzI1NiJ9"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----", "MIIEabc"),
    ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890"),
])
def test_credentials_are_removed(text, secret):
    assert secret not in scrub(text)


def test_known_secrets_and_their_basic_auth_form_are_removed():
    import base64
    basic = base64.b64encode(b"x-access-token:plain-value").decode()
    out = scrub(f"value plain-value and header Basic {basic}", ["plain-value"])
    assert "plain-value" not in out and basic not in out


def test_control_characters_are_removed_and_lines_joined():
    out = scrub("line1\r\nFAKE LOG LINE\x1b[31m red\x00\u202eevil\x07")
    assert out == "line1 FAKE LOG LINE redevil"


def test_length_is_bounded():
    out = scrub("400 Bad Request: " + "x" * 10_000, limit=300)
    assert len(out) == 300 and out.endswith("...")


def test_ordinary_messages_stay_readable():
    for text in ("the operator may not read Secret finops-system/token (403); set spec.git.tokenSecretRef.key",
                 "Secret ns/gh has no key 'token' (keys: ['token'])", "GitHub token lacks permission to push",
                 "spec.dataSources.prometheus.url: not an http(s) URL"):
        assert scrub(text) == text


def test_layout_is_kept_where_it_matters():
    """PR bodies and git output: secrets go, lines stay."""
    assert scrub_secrets("a\nhttps://u:p@h/x\nb") == "a\nhttps://***@h/x\nb"


def test_redacted_urls():
    assert redact_url("http://user:pass@prom:9090/prometheus?token=abc&x") == "http://***@prom:9090/prometheus?token=***&x"
    assert redact_url("https://prom.example:9090") == "https://prom.example:9090"


def test_conditions_and_events_are_scrubbed_whoever_built_the_message():
    message = "Prometheus http://user:pass@prom:9090 answered 400: token=abc123\n" + "y" * 50_000
    cond = condition("Ready", False, "PermanentError", message)
    assert "pass" not in cond["message"] and "abc123" not in cond["message"] and "\n" not in cond["message"]
    assert len(cond["message"]) <= 32768
    event = event_body({"apiVersion": "v1", "kind": "X", "metadata": {"name": "p", "namespace": "n"}},
                       type_="Warning", reason="RunFailed", message=message, now=NOW)
    assert "pass" not in event["message"] and len(event["message"]) <= 1024


def test_run_status_and_events_never_carry_a_url_password():
    body = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
            "metadata": {"name": "p", "namespace": "finops-system", "uid": "u", "generation": 1},
            "spec": {"mode": "DryRun", "dataSources": {"prometheus": {"url": "http://admin:hunter2@prom:9090"}}}}
    policy = read_policy(body, operator_ns="finops-system")
    outcome = RunOutcome(policy=policy, started=NOW,
                         errors={"inventory": "http://admin:hunter2@prom:9090: query rejected: password=hunter2"},
                         permanent={"inventory": True})
    status = run_status(outcome, {}, now=NOW, next_at=NOW + timedelta(hours=1))
    assert "hunter2" not in str(status) and "admin" not in str(status)
    posted = [event_body(body, type_=t, reason=r, message=m, now=NOW) for t, r, m in run_events(outcome)]
    assert len(posted) == 2 and "hunter2" not in str(posted)
