"""Notifiers, one module per family, and :func:`build_notifier` from a channel's settings.

Each channel kind has a visible ``config`` and write-only ``secrets`` (validated here, used
by the API too): chat webhook URLs are secrets (whoever holds one can post), so are the
webhook signing secrets and the SMTP password.
"""

from __future__ import annotations

import ssl
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from engine.alerts.notifiers.alertmanager import AlertmanagerNotifier
from engine.alerts.notifiers.base import AlertPayload, Notification, Notifier, NotifyError
from engine.alerts.notifiers.chat import MattermostNotifier, SlackNotifier, TeamsNotifier
from engine.alerts.notifiers.email import EmailNotifier
from engine.alerts.notifiers.webhook import WebhookNotifier

__all__ = [
    "CHANNEL_KINDS",
    "AlertPayload",
    "ChannelKind",
    "Notification",
    "Notifier",
    "NotifyError",
    "build_notifier",
    "validate_channel",
]

ChannelKind = Literal["webhook", "slack", "teams", "mattermost", "email", "alertmanager"]
CHANNEL_KINDS: tuple[str, ...] = (
    "webhook",
    "slack",
    "teams",
    "mattermost",
    "email",
    "alertmanager",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _None(_Strict):
    pass


class _UrlConfig(_Strict):
    url: HttpUrl


class _UrlSecret(_Strict):
    url: HttpUrl


class _WebhookSecrets(_Strict):
    signing_secrets: tuple[str, ...] = Field(default=(), max_length=2)


class _EmailConfig(_Strict):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    sender: str = Field(min_length=3, max_length=320)
    to: tuple[str, ...] = Field(min_length=1, max_length=50)
    username: str = Field(default="", max_length=320)


class _EmailSecrets(_Strict):
    password: str = Field(default="", max_length=1000)


_SCHEMAS: dict[str, tuple[type[_Strict], type[_Strict]]] = {
    "webhook": (_UrlConfig, _WebhookSecrets),
    "slack": (_None, _UrlSecret),
    "teams": (_None, _UrlSecret),
    "mattermost": (_None, _UrlSecret),
    "email": (_EmailConfig, _EmailSecrets),
    "alertmanager": (_UrlConfig, _None),
}


def validate_channel(
    kind: str, config: dict[str, Any], secrets: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``config`` and ``secrets`` checked for ``kind`` (pydantic ``ValidationError`` if wrong)."""
    config_model, secrets_model = _SCHEMAS[kind]
    return (
        config_model.model_validate(config).model_dump(mode="json"),
        secrets_model.model_validate(secrets).model_dump(mode="json"),
    )


def build_notifier(
    kind: str,
    config: dict[str, Any],
    secrets: dict[str, Any],
    *,
    client: httpx.Client,
    ssl_context: ssl.SSLContext | None = None,
) -> Notifier:
    """The notifier of a channel; HTTP ones share ``client`` (its timeout applies)."""
    if kind == "webhook":
        return WebhookNotifier(
            str(config["url"]), tuple(secrets.get("signing_secrets", ())), client
        )
    if kind == "slack":
        return SlackNotifier(str(secrets["url"]), client)
    if kind == "teams":
        return TeamsNotifier(str(secrets["url"]), client)
    if kind == "mattermost":
        return MattermostNotifier(str(secrets["url"]), client)
    if kind == "alertmanager":
        return AlertmanagerNotifier(str(config["url"]), client)
    if kind == "email":
        return EmailNotifier(
            host=config["host"],
            port=int(config["port"]),
            sender=config["sender"],
            to=tuple(config["to"]),
            security=config.get("security", "starttls"),
            username=config.get("username", ""),
            password=secrets.get("password", ""),
            ssl_context=ssl_context,
        )
    raise ValueError(f"unknown channel kind {kind!r}")
