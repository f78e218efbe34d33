"""E-mail over SMTP: STARTTLS, then AUTH, then one multipart/alternative mail per message.

Followed: RFC 3207 (STARTTLS; ``smtplib.SMTP.starttls`` with a verifying
``ssl`` context), RFC 4954 (AUTH; ``smtplib.SMTP.login``), RFC 2046 section 5.1.4
(multipart/alternative: text/plain first, text/html last, the preferred part).
Every value put in the HTML part is escaped (``html.escape``).

Retries: connection failures, timeouts and 4xx replies (transient, RFC 5321
section 4.2.1) with the same backoff as HTTP; 5xx replies (a refused
recipient, bad credentials) are not retried.
"""
from __future__ import annotations

import html
import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from finops_operator.notify.config import ChannelConfig
from finops_operator.notify.transport import MAX_REASON, Answer, backoff
from finops_operator.notify.message import Message
from finops_operator.scrub import scrub


def render_text(message: Message) -> str:
    lines = [message.title, "", message.text, ""]
    lines += [f"{k}: {v}" for k, v in message.fields.items()]
    lines += [""] + [f"{link.title}: {link.url}" for link in message.links] if message.links else []
    return "\n".join(lines).rstrip() + "\n"


def render_html(message: Message) -> str:
    e = html.escape
    rows = "".join(f"<tr><th align=\"left\">{e(k)}</th><td>{e(v)}</td></tr>" for k, v in message.fields.items())
    links = "".join(f"<li><a href=\"{e(link.url)}\">{e(link.title)}</a></li>" for link in message.links)
    paragraphs = "".join(f"<p>{e(p)}</p>" for p in message.text.split("\n\n"))
    return (f"<!DOCTYPE html><html><body><h2>{e(message.title)}</h2>{paragraphs}"
            + (f"<table>{rows}</table>" if rows else "") + (f"<ul>{links}</ul>" if links else "")
            + "</body></html>")


def mail(config: ChannelConfig, message: Message) -> EmailMessage:
    out = EmailMessage()
    out["Subject"] = " ".join(f"[{message.priority.value}] {message.title}".split())   # no header injection
    out["From"] = config.email_from or ""
    out["To"] = ", ".join(config.email_to)
    out["Date"] = formatdate(localtime=False)
    out["Message-ID"] = make_msgid(idstring=message.dedup_key[:40].replace("@", "-"), domain="finops-operator")
    out["X-Finops-Dedup-Key"] = message.dedup_key
    out.set_content(render_text(message))
    out.add_alternative(render_html(message), subtype="html")
    return out


def _context(config: ChannelConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=config.smtp_ca) if config.smtp_ca else ssl.create_default_context()


def _send_once(config: ChannelConfig, letter: EmailMessage, timeout: float) -> None:
    with smtplib.SMTP(config.smtp_host or "", config.smtp_port, timeout=timeout) as smtp:
        smtp.ehlo()
        smtp.starttls(context=_context(config))     # refuses to go on in clear text (SMTPNotSupportedError)
        smtp.ehlo()
        if config.smtp_user:
            smtp.login(config.smtp_user, config.smtp_password or "")
        smtp.send_message(letter)


def deliver(config: ChannelConfig, message: Message) -> Answer:
    policy, letter = config.retry, mail(config, message)
    deadline = time.monotonic() + policy.total
    attempt = 0
    while True:
        attempt += 1
        code: int | None = None
        try:
            _send_once(config, letter, max(0.1, min(policy.timeout, deadline - time.monotonic())))
            return Answer(True, 250, "", attempt)
        except smtplib.SMTPRecipientsRefused:
            return Answer(False, 550, "", attempt, "the server refused every recipient; check the channel's 'to'")
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
            reason = f"{config.endpoint} answered {code}: {exc.smtp_error!r}"
            if code >= 500:
                return Answer(False, code, "", attempt, scrub(reason, config.secrets(), limit=MAX_REASON))
        except smtplib.SMTPNotSupportedError:
            return Answer(False, None, "", attempt, f"{config.endpoint} does not offer STARTTLS; mail is never sent "
                                                    "in clear text")
        except ssl.SSLError as exc:
            return Answer(False, None, "", attempt, f"TLS failed with {config.endpoint} ({type(exc).__name__}); "
                                                    "set the CA that signed the server's certificate")
        except (TimeoutError, socket.timeout):
            reason = f"no answer from {config.endpoint} within {policy.timeout:g}s (timeout)"
        except (smtplib.SMTPException, OSError) as exc:
            reason = f"cannot talk to {config.endpoint} ({type(exc).__name__})"
        wait = backoff(attempt, policy)
        if attempt >= policy.attempts or time.monotonic() + wait >= deadline:
            return Answer(False, code, "", attempt,
                          scrub(f"{reason} (after {attempt} attempts)", config.secrets(), limit=MAX_REASON))
        time.sleep(wait)
