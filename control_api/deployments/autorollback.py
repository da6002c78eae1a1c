"""The automatic rollback the alert engine calls when an alert fires for a deployment.

The alert engine knows :class:`RollbackHook` only; :class:`AutoRollback` implements it on
the control database. A deployment opts in with its ``rollback_policy`` (which alert kinds
roll it back); the rollback is audited with the actor ``auto-rollback`` and the alert as
the reason.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from control_api.deployments import service
from control_api.deployments.schemas import DeploymentRead
from control_api.errors import NotFound
from storage.tenancy import scope_to

__all__ = ["AutoRollback", "RollbackHook"]


class RollbackHook(Protocol):
    """Called by the alert engine when an alert starts firing for a deployment."""

    def on_alert_firing(
        self, *, org_id: str, deployment_id: str, alert_kind: str, reason: str
    ) -> DeploymentRead | None:
        """Roll back if the deployment's policy says so; the deployment now serving, or None."""
        ...


class AutoRollback:
    """:class:`RollbackHook` on the control database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def on_alert_firing(
        self, *, org_id: str, deployment_id: str, alert_kind: str, reason: str
    ) -> DeploymentRead | None:
        """See :class:`RollbackHook`; an unknown deployment is ignored (returns None)."""
        with self._sessions() as session:
            scope_to(session, org_id)
            try:
                return service.auto_rollback(
                    session,
                    org_id=org_id,
                    deployment_id=deployment_id,
                    alert_kind=alert_kind,
                    reason=reason,
                )
            except NotFound:
                return None
