"""A channel's resolved configuration: type, endpoint, the secret values read from a Secret, retry policy.

The secret values (webhook URLs, tokens, passwords, routing keys, HMAC
secrets) live only here. ``repr``/``str`` show the type, the name and the
host, never a secret; :meth:`ChannelConfig.secrets` lists them for the scrubber.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlsplit

from finops_operator.errors import ConfigError

SLACK_API_URL = "https://slack.com/api/chat.postMessage"
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class ChannelType(str, Enum):
    SLACK = "Slack"             # incoming webhook
    SLACK_API = "SlackApi"      # chat.postMessage with a bot token
    EMAIL = "Email"
    TEAMS = "Teams"             # Workflows webhook
    PAGERDUTY = "PagerDuty"
    WEBHOOK = "Webhook"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per message: at most ``attempts`` tries, each ``timeout`` seconds at most; waits are exponential
    (``base`` x 2^n, capped at ``cap``, with jitter) or what ``Retry-After`` asks; all within ``total`` seconds."""

    attempts: int = 4
    timeout: float = 10.0
    base: float = 0.5
    cap: float = 30.0
    total: float = 60.0


# Fields each type needs (attribute name -> what to write in the Secret).
_REQUIRED = {
    ChannelType.SLACK: ("url",),
    ChannelType.SLACK_API: ("token", "channel"),
    ChannelType.EMAIL: ("smtp_host", "email_from", "email_to"),
    ChannelType.TEAMS: ("url",),
    ChannelType.PAGERDUTY: ("routing_key",),
    ChannelType.WEBHOOK: ("url", "hmac_secret"),
}


@dataclass(frozen=True, slots=True, repr=False)
class ChannelConfig:
    type: ChannelType
    name: str = ""                          # the NotificationChannel's namespace/name, shown in receipts
    url: str | None = None                  # Slack/Teams/generic webhook URL (a credential)
    token: str | None = None                # Slack bot token (xoxb-...)
    channel: str | None = None              # Slack channel id or name for chat.postMessage
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    email_from: str | None = None
    email_to: tuple[str, ...] = ()
    smtp_ca: str | None = None              # PEM file trusted for STARTTLS (default: the system store)
    routing_key: str | None = None          # PagerDuty Events API v2 integration key
    hmac_secret: str | None = None          # generic webhook signing secret
    source: str = "finops-operator"         # PagerDuty payload.source
    slack_api_url: str = SLACK_API_URL      # overridable endpoints (tests point them at loopback)
    pagerduty_url: str = PAGERDUTY_EVENTS_URL
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", ChannelType(self.type))
        object.__setattr__(self, "email_to", tuple(self.email_to))
        for attr in _REQUIRED[self.type]:
            if not getattr(self, attr):
                raise ConfigError(f"a {self.type.value} channel needs {attr!r}; put it in the channel's Secret",
                                  source=self.label, field=attr)
        for attr in ("url", "slack_api_url", "pagerduty_url"):
            value = getattr(self, attr)
            if value and urlsplit(value).scheme not in ("http", "https"):
                raise ConfigError(f"{attr} is not an http(s) URL; write e.g. 'https://hooks.example.com/...'",
                                  source=self.label, field=attr)

    @property
    def label(self) -> str:
        return self.name or self.type.value

    @property
    def endpoint(self) -> str:
        """Where messages go, fit to show: scheme://host[:port] only (a webhook's path is its secret)."""
        if self.type is ChannelType.EMAIL:
            return f"smtp://{self.smtp_host}:{self.smtp_port}"
        url = {ChannelType.SLACK_API: self.slack_api_url, ChannelType.PAGERDUTY: self.pagerduty_url}.get(
            self.type, self.url or "")
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")

    def secrets(self) -> list[str]:
        """Every secret value, for :func:`finops_operator.scrub.scrub` (the URL, its path and query too)."""
        out = [self.token, self.smtp_password, self.routing_key, self.hmac_secret]
        if self.url:
            parts = urlsplit(self.url)
            out += [self.url, parts.path, parts.query, parts.password]
            out += [seg for seg in parts.path.split("/") if len(seg) >= 12]
        return [s for s in out if s and len(s) >= 4]

    def __repr__(self) -> str:
        return f"ChannelConfig(type={self.type.value}, name={self.name!r}, endpoint={self.endpoint!r})"

    __str__ = __repr__
