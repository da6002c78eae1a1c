"""Monitors of one organization: each one validated as the engine will read it.

Before a monitor is stored, it is built as :class:`engine.monitor.Monitor` with its
reference profile, so anything the engine would refuse (unknown statistic, feature not in
the profile, bad window) is a 422 here; its features are also checked against the
deployed model version's feature schema when the version has one (name and kind).
:func:`engine_view` serves it back in exactly the engine's shape, with the profile inline
and ``deployment`` set to the deployment id (the key of its events and metrics).

``get`` reads through the cache (:mod:`control_api.cache`, shared with the engines'
reads, :mod:`control_api.monitors.source`). Every write, after its commit, invalidates the
monitor's entry and announces the change (:class:`~control_api.monitors.changes.MonitorChanges`),
so running engines rebuild within seconds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from control_api.cache import Cache
from control_api.deployments import repository as deployments
from control_api.errors import InvalidInput, NotFound, PreconditionFailed
from control_api.models_registry import repository as registry
from control_api.monitors import repository
from control_api.monitors.changes import MonitorChanges
from control_api.monitors.schemas import (
    EngineMonitor,
    MonitorCreate,
    MonitorRead,
    MonitorSpec,
    MonitorUpdate,
)
from control_api.monitors.source import MONITORS
from control_api.projects.service import parse_if_match
from control_api.references import service as references
from control_api.schemas import Page
from engine.monitor import Monitor
from storage.models import MonitorConfig
from storage.objects import ObjectStore

__all__ = ["create", "delete", "engine_view", "get", "list_page", "update"]


def _get(session: Session, *, org_id: str, monitor_id: str) -> MonitorConfig:
    found = repository.by_id(session, org_id=org_id, monitor_id=monitor_id)
    if found is None:
        raise NotFound("No such monitor.")
    return found


def _build(
    session: Session,
    *,
    org_id: str,
    deployment_id: str,
    reference_id: str,
    spec: MonitorSpec,
    store: ObjectStore,
) -> Monitor:
    """The engine's monitor, or 422 with the engine's reason."""
    deployment = deployments.by_id(session, org_id=org_id, deployment_id=deployment_id)
    if deployment is None:
        raise InvalidInput("No such deployment.")
    try:
        profile = references.load_profile(
            session, org_id=org_id, reference_id=reference_id, store=store
        )
    except NotFound as error:
        raise InvalidInput("No such reference dataset.") from error
    _check_schema(session, org_id=org_id, version_id=deployment.model_version_id, spec=spec)
    try:
        return Monitor.model_validate(
            {"deployment": deployment_id, "reference": profile, **spec.model_dump()}
        )
    except ValidationError as error:
        reasons = "; ".join(str(e["msg"]) for e in error.errors())
        raise InvalidInput(f"The engine would refuse this monitor: {reasons}") from error


def _check_schema(session: Session, *, org_id: str, version_id: str, spec: MonitorSpec) -> None:
    version = registry.version_by_id(session, org_id=org_id, version_id=version_id)
    if version is None or not version.feature_schema:
        return
    kinds = {field["name"]: field["type"] for field in version.feature_schema}
    wrong = [
        name for kind, names in spec.features.items() for name in names if kinds.get(name) != kind
    ]
    if wrong:
        raise InvalidInput(f"Features not in the model version's schema as given: {wrong}.")


def create(
    session: Session,
    *,
    org_id: str,
    body: MonitorCreate,
    store: ObjectStore,
    changes: MonitorChanges,
) -> MonitorRead:
    """A new monitor, validated as the engine will read it; the engines are told."""
    _build(
        session,
        org_id=org_id,
        deployment_id=body.deployment_id,
        reference_id=body.reference_id,
        spec=body.spec,
        store=store,
    )
    now = datetime.now(UTC)
    row = MonitorConfig(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=body.name,
        deployment_id=body.deployment_id,
        reference_id=body.reference_id,
        spec=body.spec.model_dump(mode="json"),
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.commit()
    created = MonitorRead.model_validate(row)
    changes.published(org_id)
    return created


def get(session: Session, *, org_id: str, monitor_id: str, cache: Cache) -> MonitorRead:
    """One monitor of ``org_id``, through the cache."""

    def load() -> MonitorRead:
        return MonitorRead.model_validate(_get(session, org_id=org_id, monitor_id=monitor_id))

    return cache.get_or_load(org_id, MONITORS, monitor_id, load)


def list_page(
    session: Session, *, org_id: str, limit: int, cursor: str | None, deployment_id: str | None
) -> Page[MonitorRead]:
    """A page of ``org_id``'s monitors (of one deployment with ``deployment_id``)."""
    rows, next_cursor = repository.page(
        session, org_id=org_id, limit=limit, cursor=cursor, deployment_id=deployment_id
    )
    return Page(items=[MonitorRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def update(
    session: Session,
    *,
    org_id: str,
    monitor_id: str,
    if_match: str | None,
    body: MonitorUpdate,
    store: ObjectStore,
    cache: Cache,
    changes: MonitorChanges,
) -> MonitorRead:
    """Change a monitor's reference or spec if it is still at the version read (412 if not)."""
    expected = parse_if_match(if_match)
    row = _get(session, org_id=org_id, monitor_id=monitor_id)
    reference_id = body.reference_id or row.reference_id
    spec = body.spec or MonitorSpec.model_validate(row.spec)
    _build(
        session,
        org_id=org_id,
        deployment_id=row.deployment_id,
        reference_id=reference_id,
        spec=spec,
        store=store,
    )
    values: dict[str, Any] = {"reference_id": reference_id, "spec": spec.model_dump(mode="json")}
    if not repository.compare_and_update(
        session, org_id=org_id, monitor_id=monitor_id, version=expected, values=values
    ):
        session.rollback()
        raise PreconditionFailed("The monitor changed since you read it; read it again.")
    session.commit()
    cache.invalidate(org_id, MONITORS, monitor_id, version=expected + 1)
    changes.published(org_id)
    session.expire_all()
    return MonitorRead.model_validate(_get(session, org_id=org_id, monitor_id=monitor_id))


def delete(
    session: Session, *, org_id: str, monitor_id: str, cache: Cache, changes: MonitorChanges
) -> None:
    """Delete a monitor; the engines are told."""
    session.delete(_get(session, org_id=org_id, monitor_id=monitor_id))
    session.commit()
    cache.invalidate(org_id, MONITORS, monitor_id, version=None)
    changes.published(org_id)


def engine_view(
    session: Session, *, org_id: str, monitor_id: str, store: ObjectStore
) -> EngineMonitor:
    """The monitor in the engine's shape: ``Monitor.model_validate(view)`` reads it as is."""
    row = _get(session, org_id=org_id, monitor_id=monitor_id)
    spec = MonitorSpec.model_validate(row.spec)
    monitor = _build(
        session,
        org_id=org_id,
        deployment_id=row.deployment_id,
        reference_id=row.reference_id,
        spec=spec,
        store=store,
    )
    shape = monitor.model_dump(mode="json", exclude={"reference"})
    profile = references.load_profile(
        session, org_id=org_id, reference_id=row.reference_id, store=store
    )
    return EngineMonitor.model_validate({**shape, "reference": profile})
