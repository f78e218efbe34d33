"""Loopback stand-ins for Slack, Teams, PagerDuty and a signed webhook, plus a real SMTP server (aiosmtpd).

Each HTTP emulator validates what it receives against the service's documented
shape and refuses what the real service would (with the service's own error
answer), so a test that passes here sends what the service accepts:

* Slack webhook  POST /services/<T>/<B>/<secret>: 200 ``ok``; 400 ``invalid_payload`` (not JSON),
  ``no_text`` (neither text nor blocks), ``invalid_blocks`` (over 50 blocks or a block over its limits),
  ``msg_too_long`` (text over 40,000 chars); 404 ``no_service`` (unknown path).
* Slack API      POST /api/chat.postMessage: 200 ``{"ok": true, "ts"}``, or 200 ``{"ok": false, "error"}``
  with ``not_authed``/``invalid_auth``/``channel_not_found``/``no_text``/``invalid_blocks``/``msg_too_long``.
* Teams          POST /workflows/<secret>: 202; 400 when not a ``message`` with one Adaptive Card attachment.
* PagerDuty      POST /v2/enqueue: 202 ``{"status": "success", "dedup_key"}``; 400 ``invalid event`` with errors.
* Webhook        POST /hook/<secret>: 200; 401 without a valid ``X-Finops-Signature`` over timestamp.body.

Each can be scripted to answer the next requests with 429 + ``Retry-After``, a 5xx or slowly:
``emulator.script(("429", 1), ("503", None), ("slow", 3.0))``. Accepted payloads land in
``emulator.accepted``; every request (time, path, headers, body) in ``emulator.requests``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

BLOCK_LIMITS = {"header": 150, "section": 3000, "field": 2000, "fields": 10, "context": 10, "actions": 25,
                "button_text": 75, "url": 3000}
PD_SEVERITIES = {"critical", "error", "warning", "info"}
PD_ACTIONS = {"trigger", "acknowledge", "resolve"}


class Refused(Exception):
    """The answer the real service gives to a bad request: (status, body)."""

    def __init__(self, status: int, body: object):
        super().__init__(body)
        self.status, self.body = status, body


def _text_obj(obj: object, kinds: set[str], limit: int, where: str) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in kinds or not isinstance(obj.get("text"), str):
        raise ValueError(f"{where}: a text object of type {sorted(kinds)} is required")
    if not obj["text"] or len(obj["text"]) > limit:
        raise ValueError(f"{where}: text must be 1..{limit} characters")


def check_blocks(blocks: object) -> None:
    """Block Kit as Slack validates it (https://api.slack.com/reference/block-kit/blocks); ValueError if not."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        raise ValueError("blocks must be a list of at most 50")
    for n, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        where = f"blocks[{n}]"
        if kind == "header":
            _text_obj(block.get("text"), {"plain_text"}, BLOCK_LIMITS["header"], where)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                raise ValueError(f"{where}: a section needs text or fields")
            if "text" in block:
                _text_obj(block["text"], {"plain_text", "mrkdwn"}, BLOCK_LIMITS["section"], where)
            fields = block.get("fields", [])
            if not isinstance(fields, list) or len(fields) > BLOCK_LIMITS["fields"]:
                raise ValueError(f"{where}: at most 10 fields")
            for f in fields:
                _text_obj(f, {"plain_text", "mrkdwn"}, BLOCK_LIMITS["field"], where + ".fields")
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= BLOCK_LIMITS["context"]:
                raise ValueError(f"{where}: 1..10 context elements")
            for e in elements:
                _text_obj(e, {"plain_text", "mrkdwn"}, 3000, where + ".elements")
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= BLOCK_LIMITS["actions"]:
                raise ValueError(f"{where}: 1..25 action elements")
            ids = [e.get("action_id") for e in elements if isinstance(e, dict)]
            if len(set(ids)) != len(ids):
                raise ValueError(f"{where}: action_id must be unique")
            for e in elements:
                if not isinstance(e, dict) or e.get("type") != "button":
                    raise ValueError(f"{where}: only buttons are expected")
                _text_obj(e.get("text"), {"plain_text"}, BLOCK_LIMITS["button_text"], where + ".button")
                url = e.get("url", "")
                if not isinstance(url, str) or len(url) > BLOCK_LIMITS["url"] or not url.startswith("http"):
                    raise ValueError(f"{where}: button url must be http(s), at most 3000 characters")
        elif kind != "divider":
            raise ValueError(f"{where}: unknown block type {kind!r}")


def _slack_message(body: dict) -> str | None:
    """The Slack error code for a bad message body, None when Slack would take it."""
    text, blocks = body.get("text"), body.get("blocks")
    if not text and not blocks:
        return "no_text"
    if text is not None and (not isinstance(text, str) or len(text) > 40_000):
        return "msg_too_long"
    if blocks is not None:
        try:
            check_blocks(blocks)
        except ValueError:
            return "invalid_blocks"
    return None


@dataclass
class Request:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Emulator:
    """A loopback HTTP server; ``handle(path, headers, body) -> (status, body)`` raises Refused to refuse."""

    handle: Callable[[str, dict[str, str], bytes], tuple[int, object]]
    accepted: list[dict] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    _script: deque = field(default_factory=deque)

    def script(self, *steps: tuple[str, float | None]) -> None:
        """The next requests get these answers in turn: ("429", retry_after|None), ("5xx", None), ("slow", s)."""
        self._script.extend(steps)

    def start(self) -> "Emulator":
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size)
                headers = {k.lower(): v for k, v in self.headers.items()}
                emulator.requests.append(Request(time.monotonic(), self.path, headers, body))
                step = emulator._script.popleft() if emulator._script else None
                extra: dict[str, str] = {}
                if step and step[0] == "slow":
                    time.sleep(step[1] or 0)
                    status, answer = emulator._answer(self.path, headers, body)
                elif step and step[0] == "429":
                    status, answer = 429, {"ok": False, "error": "ratelimited"}
                    if step[1] is not None:
                        extra["Retry-After"] = str(step[1])
                elif step:
                    status, answer = int(step[0]), "server error"
                    if step[1] is not None:
                        extra["Retry-After"] = str(step[1])
                else:
                    status, answer = emulator._answer(self.path, headers, body)
                data = answer if isinstance(answer, bytes) else (
                    answer.encode() if isinstance(answer, str) else json.dumps(answer).encode())
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass        # the client gave up (timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, object]:
        try:
            status, answer = self.handle(path, headers, body)
        except Refused as refused:
            return refused.status, refused.body
        return status, answer


def _json(body: bytes, headers: dict[str, str], status: int, answer: object) -> dict:
    if not headers.get("content-type", "").startswith("application/json"):
        raise Refused(status, answer)
    try:
        out = json.loads(body)
    except ValueError:
        raise Refused(status, answer) from None
    if not isinstance(out, dict):
        raise Refused(status, answer)
    return out


def slack_webhook(secret_path: str) -> Emulator:
    """Slack's incoming webhook at ``secret_path`` (e.g. /services/T0/B0/abc)."""
    def handle(path: str, headers: dict[str, str], raw: bytes) -> tuple[int, object]:
        if path != secret_path:
            raise Refused(404, "no_service")
        body = _json(raw, headers, 400, "invalid_payload")
        if (error := _slack_message(body)) is not None:
            raise Refused(400, error)
        emulator.accepted.append(body)
        return 200, "ok"
    emulator = Emulator(handle)
    return emulator


def slack_api(token: str, channels: set[str]) -> Emulator:
    """Slack's Web API ``chat.postMessage`` for a bot ``token`` that may post to ``channels``."""
    def handle(path: str, headers: dict[str, str], raw: bytes) -> tuple[int, object]:
        if path != "/api/chat.postMessage":
            raise Refused(404, {"ok": False, "error": "unknown_method"})
        auth = headers.get("authorization", "")
        if not auth:
            raise Refused(200, {"ok": False, "error": "not_authed"})
        if not hmac.compare_digest(auth, f"Bearer {token}"):
            raise Refused(200, {"ok": False, "error": "invalid_auth"})
        body = _json(raw, headers, 200, {"ok": False, "error": "invalid_arguments"})
        if body.get("channel") not in channels:
            raise Refused(200, {"ok": False, "error": "channel_not_found"})
        if (error := _slack_message(body)) is not None:
            raise Refused(200, {"ok": False, "error": error})
        emulator.accepted.append(body)
        return 200, {"ok": True, "channel": body["channel"], "ts": f"{time.time():.6f}"}
    emulator = Emulator(handle)
    return emulator


def check_adaptive_card(card: object) -> None:
    """An Adaptive Card (https://adaptivecards.io/explorer/) as Teams renders it; ValueError if not."""
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        raise ValueError("content.type must be AdaptiveCard")
    if card.get("version") not in {"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"}:
        raise ValueError("version must be 1.0..1.5")
    if not isinstance(card.get("body"), list) or not card["body"]:
        raise ValueError("body must be a non-empty list")
    for n, element in enumerate(card["body"]):
        kind = element.get("type") if isinstance(element, dict) else None
        if kind == "TextBlock":
            if not isinstance(element.get("text"), str) or not element["text"]:
                raise ValueError(f"body[{n}]: TextBlock needs text")
        elif kind == "FactSet":
            facts = element.get("facts")
            if not isinstance(facts, list) or not all(
                    isinstance(f, dict) and isinstance(f.get("title"), str) and isinstance(f.get("value"), str)
                    for f in facts):
                raise ValueError(f"body[{n}]: FactSet facts need string title and value")
        else:
            raise ValueError(f"body[{n}]: unexpected element {kind!r}")
    for action in card.get("actions", []):
        if action.get("type") != "Action.OpenUrl" or not str(action.get("url", "")).startswith("http") \
                or not action.get("title"):
            raise ValueError("actions must be Action.OpenUrl with a title and an http(s) url")


def teams_workflow(secret_path: str) -> Emulator:
    """A Teams Workflows webhook ("Send webhook alerts to a channel"): 202 for a message with one Adaptive Card."""
    def handle(path: str, headers: dict[str, str], raw: bytes) -> tuple[int, object]:
        if path != secret_path:
            raise Refused(404, {"error": {"code": "TriggerNotFound"}})
        if len(raw) > 28 * 1024:
            raise Refused(413, {"error": {"code": "MessageTooLarge"}})
        body = _json(raw, headers, 400, {"error": {"code": "InvalidRequestContent"}})
        attachments = body.get("attachments")
        try:
            if body.get("type") != "message" or not isinstance(attachments, list) or len(attachments) != 1:
                raise ValueError("a message with exactly one attachment is expected")
            if attachments[0].get("contentType") != "application/vnd.microsoft.card.adaptive":
                raise ValueError("contentType must be application/vnd.microsoft.card.adaptive")
            check_adaptive_card(attachments[0].get("content"))
        except (ValueError, AttributeError) as exc:
            raise Refused(400, {"error": {"code": "InvalidRequestContent", "message": str(exc)}}) from None
        emulator.accepted.append(body)
        return 202, ""
    emulator = Emulator(handle)
    return emulator


def pagerduty(routing_key: str) -> Emulator:
    """PagerDuty Events API v2 /v2/enqueue for one integration ``routing_key`` (32 characters)."""
    def handle(path: str, headers: dict[str, str], raw: bytes) -> tuple[int, object]:
        invalid = {"status": "invalid event", "message": "Event object is invalid"}
        if path != "/v2/enqueue":
            raise Refused(404, invalid)
        body = _json(raw, headers, 400, {**invalid, "errors": ["Could not parse JSON"]})
        errors = []
        if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
            errors.append("'routing_key' is missing or not 32 characters")
        if body.get("event_action") not in PD_ACTIONS:
            errors.append("'event_action' is invalid (must be trigger, acknowledge or resolve)")
        if len(str(body.get("dedup_key", ""))) > 255:
            errors.append("'dedup_key' is longer than 255 characters")
        if body.get("event_action") == "trigger":
            payload = body.get("payload") if isinstance(body.get("payload"), dict) else {}
            if not payload.get("summary") or len(payload["summary"]) > 1024:
                errors.append("'payload.summary' is missing or longer than 1024 characters")
            if not payload.get("source"):
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in PD_SEVERITIES:
                errors.append("'payload.severity' is invalid (must be critical, error, warning or info)")
        elif not body.get("dedup_key"):
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if errors:
            raise Refused(400, {**invalid, "errors": errors})
        if body["routing_key"] != routing_key:
            raise Refused(400, {**invalid, "errors": ["Invalid routing key"]})
        emulator.accepted.append(body)
        return 202, {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")}
    emulator = Emulator(handle)
    return emulator


def signed_webhook(secret_path: str, hmac_secret: str, *, window: float = 300) -> Emulator:
    """A receiver that checks ``X-Finops-Signature: sha256=HMAC(secret, timestamp + "." + body)`` and freshness."""
    def handle(path: str, headers: dict[str, str], raw: bytes) -> tuple[int, object]:
        if path != secret_path:
            raise Refused(404, {"error": "not found"})
        stamp, given = headers.get("x-finops-timestamp", ""), headers.get("x-finops-signature", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > window:
            raise Refused(401, {"error": "missing or stale X-Finops-Timestamp"})
        want = "sha256=" + hmac.new(hmac_secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, want):
            raise Refused(401, {"error": "bad signature"})
        body = _json(raw, headers, 400, {"error": "not JSON"})
        missing = [k for k in ("id", "title", "text", "priority") if not body.get(k)]
        if missing:
            raise Refused(422, {"error": f"missing {missing}"})
        emulator.accepted.append(body)
        return 200, {"received": body["id"]}
    emulator = Emulator(handle)
    return emulator


# ---------------------------------------------------------------------------------------------- SMTP


@dataclass
class Mailbox:
    """What the SMTP server received: (mail from, recipients, raw message bytes) per mail, and AUTH attempts."""

    mails: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)


def smtp_server(certs, user: str, password: str):  # noqa: ANN001, ANN201 - kubecerts.CertFiles -> (Controller, Mailbox)
    """A real SMTP server (aiosmtpd) on loopback that requires STARTTLS before anything and AUTH before MAIL.

    ``certs`` is a :class:`tests.support.kubecerts.CertFiles` (its serving cert names 127.0.0.1).
    Returns the started controller (``.port``; call ``.stop()``) and the :class:`Mailbox`.
    """
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.support.prometheus_server import free_port

    box = Mailbox()

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201 - aiosmtpd's hook
            box.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                              or envelope.content))
            return "250 Message accepted for delivery"

    def authenticate(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        box.logins.append((auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?", ok))
        return AuthResult(success=ok, handled=False)   # handled=False: the server answers 535 itself

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.serving_cert), str(certs.serving_key))
    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, auth_required=True, auth_require_tls=True,
                            authenticator=authenticate)
    controller.start()
    return controller, box
