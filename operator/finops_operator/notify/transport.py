"""POST JSON with retries: the one HTTP transport of the channels.

Why the standard library (``urllib.request``) and not ``requests``: urllib3
logs every request line at DEBUG (``"POST /services/T0/B0/secret HTTP/1.1"
200``), and a webhook's path *is* its credential; ``http.client`` logs
nothing. Redirects are refused (a POST must not be replayed elsewhere, nor
its secret headers). Proxies come from the usual ``HTTPS_PROXY``/``NO_PROXY``
variables (urllib's default ``ProxyHandler``).

Retries (one place for the rule):

* 429 and 503: wait what ``Retry-After`` says (seconds or an HTTP date,
  RFC 9110 section 10.2.3), else the backoff below;
* other 5xx, timeouts, refused or reset connections: exponential backoff
  ``base x 2^(n-1)`` capped at ``cap``, with full jitter (half to all of it);
* other 4xx: never retried (the request itself is wrong);
* never past ``RetryPolicy.total`` seconds: a wait that would overrun it ends
  the delivery (``rate-limited-by-service`` when the service asked for it).

Reasons carry the status and a bounded, scrubbed piece of the answer; the URL
shown is scheme://host:port only.
"""
from __future__ import annotations

import email.utils
import json
import random
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timezone
from typing import Callable

from finops_operator.notify.config import RetryPolicy
from finops_operator.scrub import scrub

MAX_BODY = 64 * 1024        # bytes read from an answer
MAX_REASON = 300            # characters of the answer kept in a reason
USER_AGENT = "finops-operator-notify/1"


@dataclass(frozen=True, slots=True)
class Answer:
    """The last answer of a delivery. ``status`` None: no HTTP answer (timeout, connection failed)."""

    ok: bool
    status: int | None
    body: str
    attempts: int
    reason: str = ""
    rate_limited: bool = False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None             # the 3xx surfaces as an HTTPError: not followed


_OPENER = urllib.request.build_opener(_NoRedirect)


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None when absent or unreadable.

    >>> retry_after("3")
    3.0
    >>> retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff(attempt: int, policy: RetryPolicy, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter for retry number ``attempt`` (1, 2, ...): half to all of base x 2^(n-1)."""
    full = min(policy.cap, policy.base * 2 ** min(max(0, attempt - 1), 32))
    return full * (0.5 + 0.5 * rng())


def _read(resp) -> str:  # noqa: ANN001 - an http.client.HTTPResponse or HTTPError
    try:
        return resp.read(MAX_BODY).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def _once(url: str, data: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str, str | None, str]:
    """One POST: (status, body, Retry-After, failure) where failure describes a missing answer."""
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"User-Agent": USER_AGENT, **headers})
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            return resp.status, _read(resp), resp.headers.get("Retry-After"), ""
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, _read(exc), exc.headers.get("Retry-After") if exc.headers else None, ""
    except (TimeoutError, socket.timeout):
        return None, "", None, f"no answer within {timeout:g}s (timeout)"
    except urllib.error.URLError as exc:
        inner = exc.reason
        if isinstance(inner, (TimeoutError, socket.timeout)):
            return None, "", None, f"no answer within {timeout:g}s (timeout)"
        if isinstance(inner, ssl.SSLError):
            return None, "", None, f"TLS failed ({type(inner).__name__})"
        return None, "", None, f"cannot connect ({type(inner).__name__ if not isinstance(inner, str) else 'error'})"
    except (ConnectionError, OSError) as exc:
        return None, "", None, f"connection failed ({type(exc).__name__})"


def post_json(url: str, body: object, *, where: str, policy: RetryPolicy, secrets: list[str],
              headers: Callable[[bytes], dict[str, str]] | None = None,
              accept: Callable[[int, str], str | None] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> Answer:
    """POST ``body`` as JSON to ``url`` with the retry rules above.

    ``headers(data)`` gives extra headers per attempt (a fresh signature and timestamp each time);
    ``accept(status, body)`` returns None when a 2xx answer is a success, else why it is not
    (Slack's API answers 200 ``{"ok": false}``); such a refusal is not retried.
    """
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    deadline = time.monotonic() + policy.total
    attempt, status, text, reason = 0, None, "", ""

    def said(what: str) -> str:
        return scrub(what, secrets, limit=MAX_REASON)

    while True:
        attempt += 1
        timeout = max(0.1, min(policy.timeout, deadline - time.monotonic()))
        status, text, after, failure = _once(url, data, {"Content-Type": "application/json; charset=utf-8",
                                                          **(headers(data) if headers else {})}, timeout)
        if status is not None and 200 <= status < 300:
            refused = accept(status, text) if accept else None
            if refused is None:
                return Answer(True, status, text, attempt)
            return Answer(False, status, text, attempt, said(f"{where} refused the message: {refused}"))
        if status is not None and status < 500 and status != 429:
            return Answer(False, status, text, attempt, said(f"{where} answered {status}: {text.strip()}"))
        reason = failure or f"{where} answered {status}: {text.strip()}"
        asked = retry_after(after) if status in (429, 503) else None
        wait = asked if asked is not None else backoff(attempt, policy)
        if attempt >= policy.attempts or time.monotonic() + wait >= deadline:
            why = (f"; {where} asked to wait {asked:g}s, past the delivery budget of {policy.total:g}s"
                   if asked is not None and attempt < policy.attempts else "")
            return Answer(False, status, text, attempt, said(f"{reason} (after {attempt} attempts){why}"),
                          rate_limited=status == 429)
        sleep(wait)

