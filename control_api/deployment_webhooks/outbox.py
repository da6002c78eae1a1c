"""Writing a deployment transition to the webhook outbox, in the transition's transaction.

:func:`enqueue` is called by :mod:`control_api.deployments.service` for every audited
transition, before its commit: the transition and its messages are durable together or not
at all, so no transition is lost between the commit and a send, and no message reports a
transition that was rolled back. The loop in :mod:`.delivery` sends them.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from control_api.deployment_webhooks import repository
from control_api.models_registry import repository as models
from storage.models import Deployment, DeploymentEvent, DeploymentWebhookOutbox

__all__ = ["enqueue", "event_payload"]


def event_payload(
    session: Session, event: DeploymentEvent, deployment: Deployment
) -> dict[str, Any]:
    """The message's ``data``: the transition, who made it and why, and what is deployed.

    ``model.version`` is the deployed version's number; ``occurred_at`` is ISO 8601 UTC.
    """
    version = models.version_by_id(
        session, org_id=deployment.org_id, version_id=deployment.model_version_id
    )
    model = models.model_by_id(session, org_id=deployment.org_id, model_id=deployment.model_id)
    stamp = event.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "event_id": event.id,
        "action": event.action,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "traffic_percent": event.traffic_percent,
        "actor": event.actor,
        "reason": event.reason,
        "occurred_at": stamp,
        "deployment": {
            "id": deployment.id,
            "name": deployment.name,
            "environment": deployment.environment,
            "endpoint": deployment.endpoint,
            "replicas": deployment.replicas,
            "strategy": deployment.strategy,
        },
        "model": {
            "id": deployment.model_id,
            "name": model.name if model else None,
            "version": version.number if version else None,
            "version_id": deployment.model_version_id,
            "artifact_uri": version.artifact_uri if version else None,
        },
    }


def enqueue(session: Session, event: DeploymentEvent, deployment: Deployment) -> int:
    """Add one outbox row per subscribed webhook for ``event`` (not committed); how many."""
    hooks = [
        hook
        for hook in repository.subscribed(
            session, org_id=deployment.org_id, deployment_id=deployment.id
        )
        if not hook.events or event.action in hook.events
    ]
    if not hooks:
        return 0
    payload = event_payload(session, event, deployment)
    for hook in hooks:
        session.add(
            DeploymentWebhookOutbox(
                id=str(uuid.uuid4()),
                org_id=deployment.org_id,
                webhook_id=hook.id,
                event_id=event.id,
                event_type=f"deployment.{event.action}",
                payload=payload,
                delivery="pending",
                attempts=0,
                next_attempt_at=None,
                last_error="",
                created_at=event.created_at,
            )
        )
    return len(hooks)
