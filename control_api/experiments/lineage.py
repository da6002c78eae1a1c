"""Lineage: from an alert back to the run its model version was trained in.

``alert --(deployment id)--> deployment --> model version (of a model) --(source_run)-->
run (params, latest metrics) --> experiment``. A model version registered with a
``source_run`` names a run of the organization (checked when it is registered, see
:func:`control_api.experiments.store.require_run`); the chain can still break (an alert
rule naming no real deployment, a version registered without a run, a version imported
from MLflow whose run lies outside the organization's namespace), and then it stops
there with the reason in ``gap``.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from control_api.alerts import service as alerts
from control_api.deployments import repository as deployments
from control_api.deployments.schemas import DeploymentRead
from control_api.errors import NotFound
from control_api.experiments.schemas import Lineage
from control_api.experiments.store import TrackingStore
from control_api.models_registry import repository as registry
from control_api.models_registry.schemas import ModelRead, VersionRead

__all__ = ["alert_lineage"]


def alert_lineage(session: Session, store: TrackingStore, *, org_id: str, alert_id: str) -> Lineage:
    """The chain behind alert ``alert_id`` as far as it goes; 404 if no such alert."""
    alert = alerts.get_alert(session, org_id=org_id, alert_id=alert_id)
    lineage = Lineage(alert=alert)
    deployment = deployments.by_id(session, org_id=org_id, deployment_id=alert.deployment)
    if deployment is None:
        lineage.gap = f"The alert's deployment {alert.deployment!r} is not a deployment here."
        return lineage
    version = registry.version_by_id(session, org_id=org_id, version_id=deployment.model_version_id)
    model = registry.model_by_id(session, org_id=org_id, model_id=deployment.model_id)
    assert version is not None  # a foreign key of the deployment
    assert model is not None  # a foreign key of the deployment
    lineage.deployment = DeploymentRead.model_validate(deployment)
    lineage.model = ModelRead.model_validate(model)
    lineage.version = VersionRead.model_validate(version)
    if not version.source_run:
        lineage.gap = f"Version {version.number} of {model.name} names no source run."
        return lineage
    try:
        lineage.run = store.get_run(version.source_run)
    except NotFound:
        lineage.gap = f"Run {version.source_run!r} is not in this organization's tracking store."
        return lineage
    lineage.experiment = store.get_experiment(lineage.run.experiment_id)
    return lineage
