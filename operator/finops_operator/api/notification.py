"""NotificationChannel and NotificationSubscription: the spec models (the CRDs' spec schemas, see :mod:`.crdgen`),
their parsing, and what the delivery engine (:mod:`..delivery`) needs of them.

Design choice: a subscription is its own namespaced object (``NotificationSubscription``, one per persona and
audience) rather than a list inside the channel: a team owns its subscriptions with namespace RBAC, several
subscriptions share a channel, and one subscription fans out to several channels, each with its own
``minPriority``. Channels and subscriptions refer to each other by name within a namespace.

A channel's credentials (webhook URL, bot token, SMTP password, PagerDuty routing key, HMAC secret) are only
ever in the Secret ``spec.secretRef.name``; webhook URLs are credentials too. Nothing here holds a value.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from ..delivery.model import Route, Subscription
from ..errors import ConfigError
from ..models.insights import Persona, Priority
from ..settings import ChangeWindow
from ..settings_base import Matches, Rule, SettingsModel, validate_spec
from .specs import DNS_SUBDOMAIN, SET, NamespaceName

CHANNEL_TYPES = ("Slack", "SlackApi", "Email", "Teams", "PagerDuty", "Webhook")
ChannelType = Literal["Slack", "SlackApi", "Email", "Teams", "PagerDuty", "Webhook"]
PRIORITIES = tuple(p.value.capitalize() for p in Priority)
PriorityName = Literal["Low", "Medium", "High", "Critical"]
PERSONAS = tuple(p.value for p in Persona)
# The Secret keys each type reads (logical name -> default key in the Secret), the first ones required.
SECRET_KEYS: dict[str, tuple[str, ...]] = {"Slack": ("url",), "SlackApi": ("token",), "Email": ("password",),
                                           "Teams": ("url",), "PagerDuty": ("routingKey",),
                                           "Webhook": ("url", "hmacSecret")}
REQUIRED_KEYS = {"Slack": ("url",), "SlackApi": ("token",), "Email": (), "Teams": ("url",),
                 "PagerDuty": ("routingKey",), "Webhook": ("url",)}
LOGICAL_KEYS = ("url", "token", "password", "routingKey", "hmacSecret")
SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class ChannelSecretRef(SettingsModel):
    """The Secret (same namespace) with the channel's credentials. The operator GETs it by name."""

    name: Annotated[str, Field(min_length=1, max_length=253), Matches(DNS_SUBDOMAIN, (
        "secretRef.name must be a Secret name (lower-case DNS subdomain) in the channel's namespace"))]
    keys: Annotated[dict[str, SecretKey], Field(max_length=5, description=(
        "Which key of the Secret holds each credential, when not the default key of the same name: url (Slack, "
        "Teams, Webhook), token (SlackApi), password (Email), routingKey (PagerDuty), hmacSecret (Webhook, "
        "optional).")), Rule("self.all(k, k in ['url', 'token', 'password', 'routingKey', 'hmacSecret'])",
                             "secretRef.keys may only name url, token, password, routingKey or hmacSecret",
                             lambda m: all(k in LOGICAL_KEYS for k in m))] | None = None

    def key(self, logical: str) -> str:
        return (self.keys or {}).get(logical, logical)


class SlackSettings(SettingsModel):
    """Slack: the channel chat.postMessage posts to (SlackApi); incoming webhooks post where they were made."""

    channel: str | None = Field(default=None, max_length=80, pattern=r"^[#@]?[A-Za-z0-9._-]+$",
                                description="Channel name or ID, e.g. #finops or C0123456789 (SlackApi only).")


class EmailSettings(SettingsModel):
    """SMTP with STARTTLS and login (the password is in the Secret under secretRef.keys.password)."""

    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.-]+$", description="SMTP server host.")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587: submission with STARTTLS).")
    starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS (required off loopback).")
    username: str | None = Field(default=None, max_length=253, description="Login name; absent: no login.")
    from_: str = Field(alias="from", min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$",
                       description="Sender address.")
    to: list[Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(
        min_length=1, max_length=50, json_schema_extra=SET, description="Recipient addresses.")


class PagerDutySettings(SettingsModel):
    """PagerDuty Events API v2 (the routing key is in the Secret)."""

    source: str = Field(default="finops-operator", max_length=255, description="The event's payload.source.")


def _settings_match(spec: "NotificationChannelSpecSchema") -> bool:
    return spec.type != "Email" or spec.email is not None


class NotificationChannelSpecSchema(SettingsModel):
    """Where messages go: a service and the Secret with its credentials."""

    rules = (Rule("self.type != 'Email' || has(self.email)",
                  "spec.email (host, from, to) is required when spec.type is Email", _settings_match, field="email"),
             Rule("self.type != 'SlackApi' || (has(self.slack) && has(self.slack.channel))",
                  "spec.slack.channel is required when spec.type is SlackApi (chat.postMessage needs a channel)",
                  lambda s: s.type != "SlackApi" or (s.slack is not None and s.slack.channel is not None),
                  field="slack"))

    type: ChannelType = Field(description=(
        "Slack (incoming webhook URL), SlackApi (chat.postMessage with a bot token), Email (SMTP), Teams "
        "(Workflows webhook URL), PagerDuty (Events API v2 routing key) or Webhook (JSON POST, optional "
        "HMAC-SHA256 signature)."))
    secret_ref: ChannelSecretRef | None = Field(default=None, description=(
        "The Secret holding the credentials; webhook URLs are credentials and are never logged or shown."))
    slack: SlackSettings | None = None
    email: EmailSettings | None = None
    pager_duty: PagerDutySettings | None = None
    suspended: bool = Field(default=False, description="Queue but do not send (deliveries resume when false).")


class ChannelRoute(SettingsModel):
    """A channel of this subscription (a NotificationChannel in the same namespace) and what goes there."""

    name: NamespaceName
    min_priority: PriorityName = Field(default="Low", description="Insights below this priority are not sent here.")


Clock = Annotated[str, Field(max_length=5, pattern=r"^([01]\d|2[0-4]):[0-5]\d$")]


class QuietHours(ChangeWindow):
    """No deliveries from start to end, local time in timeZone (end earlier than start: the next morning). Held messages go when the quiet hours end; Critical ones go at once."""  # noqa: E501

    rules = (Rule("!has(self.end) || !has(self.start) || self.end != self.start",
                  "quietHours: end must differ from start (22:00 to 07:00 crosses midnight; 00:00 to 24:00 is the "
                  "whole day)", lambda w: w.end != w.start, field="end"),)

    days: Annotated[list[Annotated[int, Field(ge=0, le=6)]], Field(max_length=7, json_schema_extra=SET, description=(
        "Weekdays the quiet hours start on, 0=Monday .. 6=Sunday."))] = [0, 1, 2, 3, 4, 5, 6]
    start: Clock = Field(default="22:00", description="Local start time HH:MM.")
    end: Clock = Field(default="07:00", description="Local end time HH:MM (earlier than start: the next day).")


class Batching(SettingsModel):
    """Low-priority insights wait and go together as one digest."""

    max_priority: PriorityName = Field(default="Medium", description=(
        "Insights up to this priority are batched; higher ones go at once."))
    size: int = Field(default=10, ge=1, le=100, description="A digest goes when it holds this many insights ...")
    interval_seconds: int = Field(default=3600, ge=60, le=7 * 86400, description=(
        "... or when its oldest insight has waited this long."))


class NotificationSubscriptionSpecSchema(SettingsModel):
    """Who receives which insights, on which channels, and how often."""

    persona: Literal["cfo", "engineer", "finance", "business"] = Field(description=(
        "Whose insights: cfo, engineer, finance (analyst) or business (lead)."))
    recipients: list[Annotated[str, Field(min_length=1, max_length=254)]] = Field(
        default_factory=list, max_length=50, json_schema_extra=SET, description=(
            "People or groups this subscription is for (shown in digests; e-mail addresses add to spec.email.to)."))
    channels: list[ChannelRoute] = Field(min_length=1, max_length=8, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    batching: Batching = Batching()
    rate_limit_per_hour: int = Field(default=0, ge=0, le=1000, description=(
        "At most this many deliveries per channel in any 60 minutes (a digest counts once); 0: no limit. "
        "Critical insights are never held by it."))
    quiet_hours: QuietHours | None = None


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ChannelSpec:
    namespace: str
    name: str
    schema: NotificationChannelSpecSchema
    uid: str = ""
    generation: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def source(self) -> str:
        return f"NotificationChannel {self.key}"


def _parse(model: Any, body: dict[str, Any], kind: str) -> tuple[dict[str, Any], Any]:
    meta = body.get("metadata") or {}
    source = f"{kind} {meta.get('namespace')}/{meta.get('name')}"
    raw = body.get("spec")
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping", source=source, field="spec")
    return meta, validate_spec(model, raw, source=source, prefix="spec")


def read_channel(body: dict[str, Any]) -> ChannelSpec:
    meta, spec = _parse(NotificationChannelSpecSchema, body, "NotificationChannel")
    if spec.secret_ref is None and REQUIRED_KEYS[spec.type]:
        raise ConfigError(f"a {spec.type} channel needs spec.secretRef (its {REQUIRED_KEYS[spec.type][0]} is a "
                          "credential and lives in a Secret)", source=f"NotificationChannel {meta.get('name')}",
                          field="spec.secretRef")
    return ChannelSpec(meta.get("namespace") or "default", meta.get("name") or "?", spec,
                       str(meta.get("uid") or ""), int(meta.get("generation") or 0))


def read_subscription(body: dict[str, Any]) -> Subscription:
    """A NotificationSubscription as the engine's :class:`Subscription` (channels by name in its namespace)."""
    meta, spec = _parse(NotificationSubscriptionSpecSchema, body, "NotificationSubscription")
    return Subscription(
        name=f"{meta.get('namespace') or 'default'}/{meta.get('name')}", persona=Persona(spec.persona),
        routes=tuple(Route(c.name, Priority(c.min_priority.lower())) for c in spec.channels),
        recipients=tuple(spec.recipients), batch_size=spec.batching.size,
        batch_interval=timedelta(seconds=spec.batching.interval_seconds),
        batch_max_priority=Priority(spec.batching.max_priority.lower()),
        rate_per_hour=spec.rate_limit_per_hour, quiet=spec.quiet_hours)
