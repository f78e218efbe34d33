"""The one scrubber: text that leaves the operator (status, Events, logs, errors, PRs) goes through :func:`scrub`.

It removes what must never be shown and bounds what may be:

* the values of secrets we know (a token read from a Secret), also in their
  HTTP basic-auth form (``base64("x-access-token:<token>")``);
* anything shaped like a credential even when we were not told its value:
  URL user-info (``https://user:pass@host`` -> ``https://***@host``), tokens in
  query strings (``?access_token=...``), ``Authorization``/``Bearer`` values,
  ``password=...``/``token: ...`` pairs, GitHub/GitLab/Slack tokens, AWS access key ids,
  JWTs (ServiceAccount tokens), PEM private keys;
* control characters (ANSI escapes, NUL, C1, bidi overrides): newlines and tabs become
  spaces, so a message from a remote server cannot forge log lines or hide text;
* length: ``limit`` characters at most, ``...`` marking the cut.

Used at the edges where errors are built from what a remote server answered
(``sources.prometheus``, ``sources.aws``, ``actuation.github``, ``actuation.git``),
and again, as a last line of defence, where status conditions, Events and log
records are written (``api.conditions``, ``api.events``, ``api.runs``, ``logs``).

    >>> scrub("GET http://admin:hunter2@prom:9090/api failed: 400 " + "x" * 500, limit=60)
    'GET http://***@prom:9090/api failed: 400 xxxxxxxxxxxxxxxx...'
"""
from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Token shapes scrubbed even when their value was not given to us.
_TOKEN_SHAPES = [
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{16,})"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),                          # Slack
    re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[0-9A-Z]{16}\b"),                    # AWS access key ids
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWT (ServiceAccount tokens)
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    re.compile(r"(?<=://)[^/\s@?#]+(?=@)"),                                    # URL user-info
    re.compile(r"(?i)(?<=authorization: )(?:basic|bearer|token) [^\s'\"]+"),
    re.compile(r"(?i)(?<=authorization=)(?:basic|bearer|token) [^\s'\"]+"),
]
# Free text from remote servers and exceptions: (pattern, replacement), the name stays, the value goes.
_VALUES = [
    (re.compile(r"(?i)([?&;](?:access_token|token|api[_-]?key|apikey|key|password|passwd|secret|sig|signature|"
                r"x-amz-signature|x-amz-credential|x-amz-security-token|client_secret)=)[^&\s#'\"]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + MASK),
    (re.compile(r"(?i)\b(authorization|x-api-key|api-key|private-token|x-auth-token|cookie|set-cookie)"
                r"(['\"]?\s*[:=]\s*['\"]?)(?!\*\*\*)[^\s'\",;}]+(?:\s+(?!\*\*\*)[^\s'\",;}]+)?"), r"\1\2" + MASK),
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|client_secret|secret_access_key|aws_secret_access_key|"
                r"access_token|token|api[_-]?key|session_token)(['\"]?\s*[:=]\s*['\"]?)(?!\*\*\*)[^\s'\",;&}]+"),
     r"\1\2" + MASK),
    (re.compile(r"(?i)(Credential=)[^/\s,]+"), r"\1" + MASK),                                 # SigV4 headers
]
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
_WHITESPACE_CONTROLS = re.compile(r"[\t\n\r\v\f\x85\u2028\u2029]+")
_LINE_BREAKS = re.compile(r"\r\n|[\r\v\f\x85\u2028\u2029]")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def scrub_secrets(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the ``secrets`` given and without token-shaped strings; layout kept (PR bodies, git output)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
            text = text.replace(base64.b64encode(f"x-access-token:{secret}".encode()).decode(), MASK)
    for pattern in _TOKEN_SHAPES:
        text = pattern.sub(MASK, text)
    return text


def scrub(text: object, secrets: Iterable[str | None] = (), *, limit: int | None = None,
          one_line: bool = True) -> str:
    """One line for status, Events and logs: no secrets, no ``key=value`` credentials, no control characters,
    at most ``limit`` characters. ``one_line=False`` keeps line breaks (tracebacks)."""
    out = scrub_secrets(str(text), secrets)
    for pattern, replacement in _VALUES:
        out = pattern.sub(replacement, out)
    out = _ANSI.sub("", out)
    if one_line:
        out = _WHITESPACE_CONTROLS.sub(" ", out)
    else:
        out = _LINE_BREAKS.sub("\n", out).replace("\t", "    ")
    out = _CONTROLS.sub("", out)
    return bound(out, limit)


def bound(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters, ``...`` marking the cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[:max(0, limit - 3)] + "..."


def redact_url(url: str) -> str:
    """A URL fit to show: no user-info, no query string values (``http://***@host/path?token=***``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = "&".join(f"{kv.split('=', 1)[0]}={MASK}" if "=" in kv else kv for kv in parts.query.split("&")) \
        if parts.query else ""
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, "")))
