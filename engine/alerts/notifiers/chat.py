"""Chat notifiers over incoming webhooks.

Slack (blocks), Microsoft Teams (Adaptive Card via a Workflows webhook) and Mattermost
(Slack-compatible attachments). Each message carries the numbers (value vs threshold), the
annotations and the links (deployment, Grafana panel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from engine.alerts.notifiers.base import AlertPayload, Notification, post_json

__all__ = ["MattermostNotifier", "SlackNotifier", "TeamsNotifier"]

_MAX_ALERTS = 10  # Slack allows 50 blocks a message: keep the message short and readable


def _line(alert: AlertPayload) -> str:
    summary = alert.annotations.get("summary") or alert.name
    return f"{summary} (value {alert.value:.4g}, threshold {alert.threshold:.4g})"


def _links(alert: AlertPayload) -> str:
    return " | ".join(f"<{url}|{name}>" for name, url in sorted(alert.links.items()))


def _more(notification: Notification) -> int:
    return max(0, len(notification.alerts) - _MAX_ALERTS)


@dataclass
class SlackNotifier:
    """Slack incoming webhook with Block Kit blocks (header, one section per alert)."""

    url: str
    client: httpx.Client

    def payload(self, notification: Notification) -> dict[str, Any]:
        """The Slack message."""
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": notification.title[:150]}}
        ]
        for alert in notification.alerts[:_MAX_ALERTS]:
            text = f"*{alert.status.upper()}* {_line(alert)}"
            if alert.annotations.get("description"):
                text += f"\n{alert.annotations['description']}"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
            if alert.links:
                context = {"type": "mrkdwn", "text": _links(alert)}
                blocks.append({"type": "context", "elements": [context]})
        if _more(notification):
            more = {"type": "mrkdwn", "text": f"and {_more(notification)} more"}
            blocks.append({"type": "context", "elements": [more]})
        return {"text": notification.title, "blocks": blocks}

    def send(self, notification: Notification) -> int | None:
        """Deliver to Slack."""
        return post_json(self.client, self.url, orjson.dumps(self.payload(notification)))


@dataclass
class MattermostNotifier:
    """Mattermost incoming webhook: markdown text and one attachment per alert."""

    url: str
    client: httpx.Client
    username: str = "Driftline"

    def payload(self, notification: Notification) -> dict[str, Any]:
        """The Mattermost message."""
        attachments = [
            {
                "fallback": _line(alert),
                "color": "#d00000" if alert.status == "firing" else "#2eb886",
                "title": f"{alert.status.upper()}: {alert.name}",
                "text": _line(alert) + "\n" + alert.annotations.get("description", ""),
                "fields": [
                    {"short": True, "title": k, "value": v} for k, v in sorted(alert.links.items())
                ],
            }
            for alert in notification.alerts[:_MAX_ALERTS]
        ]
        return {
            "username": self.username,
            "text": f"#### {notification.title}",
            "attachments": attachments,
        }

    def send(self, notification: Notification) -> int | None:
        """Deliver to Mattermost."""
        return post_json(self.client, self.url, orjson.dumps(self.payload(notification)))


@dataclass
class TeamsNotifier:
    """Microsoft Teams through a Workflows webhook: one Adaptive Card (schema 1.4)."""

    url: str
    client: httpx.Client

    def payload(self, notification: Notification) -> dict[str, Any]:
        """The Teams message wrapping the Adaptive Card."""
        body: list[dict[str, Any]] = [
            {
                "type": "TextBlock",
                "size": "Large",
                "weight": "Bolder",
                "wrap": True,
                "text": notification.title,
            },
        ]
        for alert in notification.alerts[:_MAX_ALERTS]:
            facts = [
                {"title": "Status", "value": alert.status},
                {"title": "Value", "value": f"{alert.value:.4g}"},
                {"title": "Threshold", "value": f"{alert.threshold:.4g}"},
            ] + [{"title": k, "value": v} for k, v in sorted(alert.labels.items())]
            body.append({"type": "TextBlock", "wrap": True, "text": _line(alert)})
            body.append({"type": "FactSet", "facts": facts})
        actions = (
            [
                {"type": "Action.OpenUrl", "title": name, "url": url}
                for name, url in sorted(notification.alerts[0].links.items())
            ]
            if notification.alerts
            else []
        )
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
            "actions": actions,
        }
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        }

    def send(self, notification: Notification) -> int | None:
        """Deliver to Teams."""
        return post_json(self.client, self.url, orjson.dumps(self.payload(notification)))
