"""Deployments of one organization and their state machine.

States: ``pending -> active -> superseded | rolled_back``, ``pending -> rolled_back |
failed``. Every transition is written to the audit trail (who, when, why); any other
transition answers 409. A transition names the version it read (``If-Match``) and is
applied with a compare-and-update, so of two operators promoting at once one wins and the
other gets 412. Deployments with the same name and environment form a slot: promoting one
supersedes the slot's active deployment (also with a compare-and-update, so two different
candidates cannot both become active), and rolling back an active deployment brings the
one it superseded back as a new active deployment of that version. Each transition also
goes to the subscribed webhooks' outbox in its transaction (:mod:`control_api.deployment_webhooks`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from control_api.deployment_webhooks import outbox as webhooks
from control_api.deployments import repository
from control_api.deployments.manifests import ManifestInput, k8s_name, render
from control_api.deployments.schemas import (
    DeploymentCreate,
    DeploymentEventRead,
    DeploymentRead,
    RollbackPolicy,
    TrafficSet,
    Transition,
)
from control_api.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from control_api.models_registry import repository as models
from control_api.models_registry import service as registry
from control_api.projects.service import parse_if_match
from control_api.schemas import Page
from storage.models import Deployment, DeploymentEvent

__all__ = [
    "TRANSITIONS",
    "IllegalTransition",
    "auto_rollback",
    "create",
    "events",
    "fail",
    "get",
    "list_page",
    "manifests",
    "promote",
    "rollback",
    "set_traffic",
]

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"active", "rolled_back", "failed"}),
    "active": frozenset({"superseded", "rolled_back"}),
    "superseded": frozenset(),
    "rolled_back": frozenset(),
    "failed": frozenset(),
}
"""The states each state may move to; anything else is an illegal transition."""


class IllegalTransition(Conflict):
    """The deployment's state does not allow this transition (409)."""

    kind = "/problems/illegal-transition"


def _get(session: Session, *, org_id: str, deployment_id: str) -> Deployment:
    deployment = repository.by_id(session, org_id=org_id, deployment_id=deployment_id)
    if deployment is None:
        raise NotFound("No such deployment.")
    return deployment


def _check(deployment: Deployment, target: str) -> None:
    if target not in TRANSITIONS[deployment.state]:
        raise IllegalTransition(f"A {deployment.state} deployment cannot become {target}.")


def _audit(
    session: Session,
    deployment: Deployment,
    *,
    action: str,
    from_state: str | None,
    to_state: str,
    traffic: int,
    actor: str,
    reason: str,
) -> None:
    event = DeploymentEvent(
        id=str(uuid.uuid4()),
        org_id=deployment.org_id,
        deployment_id=deployment.id,
        action=action,
        from_state=from_state,
        to_state=to_state,
        traffic_percent=traffic,
        actor=actor,
        reason=reason,
        created_at=datetime.now(UTC),
    )
    session.add(event)
    webhooks.enqueue(session, event, deployment)  # committed with the transition, or not at all


def _move(
    session: Session,
    deployment: Deployment,
    *,
    version: int,
    action: str,
    state: str,
    traffic: int,
    actor: str,
    reason: str,
    **values: object,
) -> None:
    """Compare-and-update one deployment and audit it; 412 when it moved on meanwhile."""
    applied = repository.compare_and_update(
        session,
        org_id=deployment.org_id,
        deployment_id=deployment.id,
        version=version,
        values={"state": state, "traffic_percent": traffic, **values},
    )
    if not applied:
        session.rollback()
        raise PreconditionFailed("The deployment changed since you read it; read it again.")
    _audit(
        session,
        deployment,
        action=action,
        from_state=deployment.state,
        to_state=state,
        traffic=traffic,
        actor=actor,
        reason=reason,
    )


def _read(session: Session, *, org_id: str, deployment_id: str) -> DeploymentRead:
    session.expire_all()
    return DeploymentRead.model_validate(_get(session, org_id=org_id, deployment_id=deployment_id))


def create(session: Session, *, org_id: str, actor: str, body: DeploymentCreate) -> DeploymentRead:
    """A new pending deployment of a (not archived) model version."""
    version = registry.require_version(
        session, org_id=org_id, model_id=body.model_id, number=body.model_version
    )
    if version.status == registry.ARCHIVED:
        raise InvalidInput("An archived model version cannot be deployed.")
    now = datetime.now(UTC)
    deployment = Deployment(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=body.name,
        environment=body.environment,
        endpoint=body.endpoint,
        replicas=body.replicas,
        model_id=body.model_id,
        model_version_id=version.id,
        strategy=body.strategy,
        state="pending",
        traffic_steps=body.traffic_steps,
        traffic_percent=body.traffic_steps[0] if body.traffic_steps else 0,
        previous_id=None,
        rollback_policy=body.rollback_policy.model_dump(),
        version=1,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(deployment)
    session.flush()
    _audit(
        session,
        deployment,
        action="created",
        from_state=None,
        to_state="pending",
        traffic=deployment.traffic_percent,
        actor=actor,
        reason="",
    )
    session.commit()
    return DeploymentRead.model_validate(deployment)


def get(session: Session, *, org_id: str, deployment_id: str) -> DeploymentRead:
    """One deployment of ``org_id``; 404 if missing or another organization's."""
    return DeploymentRead.model_validate(_get(session, org_id=org_id, deployment_id=deployment_id))


def list_page(
    session: Session,
    *,
    org_id: str,
    limit: int,
    cursor: str | None,
    environment: str | None,
    state: str | None,
) -> Page[DeploymentRead]:
    """A page of ``org_id``'s deployments, newest first."""
    rows, next_cursor = repository.page(
        session, org_id=org_id, limit=limit, cursor=cursor, environment=environment, state=state
    )
    return Page(items=[DeploymentRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def events(session: Session, *, org_id: str, deployment_id: str) -> list[DeploymentEventRead]:
    """The deployment's audit trail, oldest first."""
    _get(session, org_id=org_id, deployment_id=deployment_id)
    rows = repository.events(session, org_id=org_id, deployment_id=deployment_id)
    return [DeploymentEventRead.model_validate(r) for r in rows]


def manifests(
    session: Session,
    *,
    org_id: str,
    deployment_id: str,
    image: str,
    port: int,
    max_replicas: int,
    cpu_target_percent: int,
) -> list[dict[str, Any]]:
    """Kubernetes objects for the deployment (see :mod:`control_api.deployments.manifests`).

    ``image`` empty means ``<name>:<model version>``; ``max_replicas`` 0 means twice the
    deployment's replicas.
    """
    deployment = _get(session, org_id=org_id, deployment_id=deployment_id)
    version = models.version_by_id(session, org_id=org_id, version_id=deployment.model_version_id)
    model = models.model_by_id(session, org_id=org_id, model_id=deployment.model_id)
    if version is None or model is None:
        raise NotFound("The deployed model version no longer exists.")
    item = ManifestInput(
        deployment_id=deployment.id,
        name=deployment.name,
        environment=deployment.environment,
        endpoint=deployment.endpoint,
        replicas=deployment.replicas,
        strategy=deployment.strategy,
        state=deployment.state,
        traffic_percent=deployment.traffic_percent,
        model_id=model.id,
        model_name=model.name,
        model_version=version.number,
        artifact_uri=version.artifact_uri,
        slot_index=repository.slot_position(session, org_id=org_id, deployment=deployment),
        image=image or f"{k8s_name(deployment.name)}:{version.number}",
        port=port,
        max_replicas=max_replicas or 2 * max(1, deployment.replicas),
        cpu_target_percent=cpu_target_percent,
    )
    return render(item)


def promote(
    session: Session,
    *,
    org_id: str,
    deployment_id: str,
    actor: str,
    if_match: str | None,
    body: Transition,
) -> DeploymentRead:
    """Make a pending deployment active at 100 %, superseding the slot's active one."""
    expected = parse_if_match(if_match)
    deployment = _get(session, org_id=org_id, deployment_id=deployment_id)
    _check(deployment, "active")
    current = repository.active_in_slot(
        session, org_id=org_id, name=deployment.name, environment=deployment.environment
    )
    for old in current:
        _check(old, "superseded")
        _move(
            session,
            old,
            version=old.version,
            action="superseded",
            state="superseded",
            traffic=0,
            actor=actor,
            reason=f"superseded by {deployment.id}",
        )
    _move(
        session,
        deployment,
        version=expected,
        action="promoted",
        state="active",
        traffic=100,
        actor=actor,
        reason=body.reason,
        previous_id=current[0].id if current else None,
    )
    session.commit()
    return _read(session, org_id=org_id, deployment_id=deployment_id)


def rollback(
    session: Session,
    *,
    org_id: str,
    deployment_id: str,
    actor: str,
    if_match: str | None,
    body: Transition,
) -> DeploymentRead:
    """Roll back ``deployment_id``; returns the deployment now serving (may be a new one).

    A pending one (a canary, a green slot, a shadow) is abandoned and the slot's active
    deployment keeps serving. An active one is replaced by a new active deployment of the
    version it superseded; 409 when it superseded nothing.
    """
    return _rollback(
        session,
        org_id=org_id,
        deployment_id=deployment_id,
        actor=actor,
        expected=parse_if_match(if_match),
        reason=body.reason,
    )


def _rollback(
    session: Session, *, org_id: str, deployment_id: str, actor: str, expected: int, reason: str
) -> DeploymentRead:
    deployment = _get(session, org_id=org_id, deployment_id=deployment_id)
    _check(deployment, "rolled_back")
    if deployment.state == "pending":
        _move(
            session,
            deployment,
            version=expected,
            action="rolled_back",
            state="rolled_back",
            traffic=0,
            actor=actor,
            reason=reason,
        )
        session.commit()
        current = repository.active_in_slot(
            session, org_id=org_id, name=deployment.name, environment=deployment.environment
        )
        return (
            DeploymentRead.model_validate(current[0])
            if current
            else _read(session, org_id=org_id, deployment_id=deployment_id)
        )
    previous = (
        repository.by_id(session, org_id=org_id, deployment_id=deployment.previous_id)
        if deployment.previous_id
        else None
    )
    if previous is None:
        raise IllegalTransition("There is no previous version to roll back to.")
    _move(
        session,
        deployment,
        version=expected,
        action="rolled_back",
        state="rolled_back",
        traffic=0,
        actor=actor,
        reason=reason,
    )
    now = datetime.now(UTC)
    restored = Deployment(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=deployment.name,
        environment=deployment.environment,
        endpoint=deployment.endpoint,
        replicas=deployment.replicas,
        model_id=previous.model_id,
        model_version_id=previous.model_version_id,
        strategy="direct",
        state="active",
        traffic_steps=[],
        traffic_percent=100,
        previous_id=previous.previous_id,
        rollback_policy=previous.rollback_policy,
        version=1,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(restored)
    session.flush()
    _audit(
        session,
        restored,
        action="restored",
        from_state=None,
        to_state="active",
        traffic=100,
        actor=actor,
        reason=f"rollback of {deployment.id}: {reason}".rstrip(": "),
    )
    session.commit()
    return DeploymentRead.model_validate(restored)


def set_traffic(
    session: Session,
    *,
    org_id: str,
    deployment_id: str,
    actor: str,
    if_match: str | None,
    body: TrafficSet,
) -> DeploymentRead:
    """Move a pending canary to ``body.percent`` of the traffic (promote for 100 %)."""
    expected = parse_if_match(if_match)
    deployment = _get(session, org_id=org_id, deployment_id=deployment_id)
    if deployment.strategy != "canary":
        raise IllegalTransition("Only canary deployments take a traffic share.")
    if deployment.state != "pending":
        raise IllegalTransition(f"A {deployment.state} canary takes no traffic changes.")
    _move(
        session,
        deployment,
        version=expected,
        action="traffic_set",
        state="pending",
        traffic=body.percent,
        actor=actor,
        reason=body.reason,
    )
    session.commit()
    return _read(session, org_id=org_id, deployment_id=deployment_id)


def fail(
    session: Session,
    *,
    org_id: str,
    deployment_id: str,
    actor: str,
    if_match: str | None,
    body: Transition,
) -> DeploymentRead:
    """Record that a pending deployment failed to roll out (e.g. reported by the CD system)."""
    expected = parse_if_match(if_match)
    deployment = _get(session, org_id=org_id, deployment_id=deployment_id)
    _check(deployment, "failed")
    _move(
        session,
        deployment,
        version=expected,
        action="failed",
        state="failed",
        traffic=0,
        actor=actor,
        reason=body.reason,
    )
    session.commit()
    return _read(session, org_id=org_id, deployment_id=deployment_id)


def auto_rollback(
    session: Session, *, org_id: str, deployment_id: str, alert_kind: str, reason: str
) -> DeploymentRead | None:
    """Roll back when the deployment's policy covers an alert of ``alert_kind``.

    Returns the deployment now serving, or ``None`` when the policy does not apply (none
    set, another kind of alert, or the deployment is no longer pending or active).
    """
    deployment = _get(session, org_id=org_id, deployment_id=deployment_id)
    policy = RollbackPolicy.model_validate(deployment.rollback_policy)
    if not policy.enabled or alert_kind not in policy.on:
        return None
    if deployment.state not in ("pending", "active"):
        return None
    if deployment.state == "active" and deployment.previous_id is None:
        return None
    return _rollback(
        session,
        org_id=org_id,
        deployment_id=deployment_id,
        actor="auto-rollback",
        expected=deployment.version,
        reason=reason,
    )
