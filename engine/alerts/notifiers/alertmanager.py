"""Prometheus Alertmanager: ``POST <url>/api/v2/alerts`` with the group's alerts.

Each alert goes with its labels (``alertname`` included), annotations, ``startsAt`` and,
once resolved, ``endsAt``; a firing alert leaves ``endsAt`` out, so Alertmanager keeps it
for its ``resolve_timeout`` and our repeats keep it alive. ``generatorURL`` is the
deployment link when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from engine.alerts.notifiers.base import Notification, post_json

__all__ = ["AlertmanagerNotifier"]


@dataclass
class AlertmanagerNotifier:
    """Posts to Alertmanager's API v2."""

    url: str
    client: httpx.Client

    def payload(self, notification: Notification) -> list[dict[str, Any]]:
        """The ``postableAlerts`` body."""
        out: list[dict[str, Any]] = []
        for alert in notification.alerts:
            item: dict[str, Any] = {
                "labels": alert.labels,
                "annotations": alert.annotations
                | {"value": f"{alert.value:.6g}", "threshold": f"{alert.threshold:.6g}"},
                "startsAt": alert.starts_at,
            }
            if alert.ends_at is not None and alert.status == "resolved":
                item["endsAt"] = alert.ends_at
            if "deployment" in alert.links:
                item["generatorURL"] = alert.links["deployment"]
            out.append(item)
        return out

    def send(self, notification: Notification) -> int | None:
        """Deliver to Alertmanager."""
        url = self.url.rstrip("/") + "/api/v2/alerts"
        return post_json(self.client, url, orjson.dumps(self.payload(notification)))
