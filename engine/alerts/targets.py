"""Which rules apply to a closed window: the deployment's own and those following an alias.

A rule names either one deployment (the engine's key of its events) or a target
``model@alias`` (``fraud-model@champion``). A target is resolved when a window closes, in
the same single query that finds the deployment's own rules: the alias's version *now*,
and whether the window's deployment serves that version (its state in
:data:`SERVING_STATES`). Moving the alias (``PUT /v1/models/{id}/aliases/champion``)
therefore moves the rule at the next window that closes: the new version's deployments are
evaluated, the old one's no longer are. The old deployment's pending and firing alerts of
the rule are resolved at its next window (:func:`rules_left_behind`): the rule no longer
watches it. Nothing is cached across windows, and nothing is resolved per series.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from storage.models import AlertRule, AlertState, Deployment, ModelAlias, RegisteredModel

__all__ = [
    "SERVING_STATES",
    "TARGET_PATTERN",
    "parse_target",
    "rules_for_window",
    "rules_left_behind",
]

SERVING_STATES = ("pending", "active")
"""Deployment states that serve their version (a pending canary or shadow takes traffic too);
superseded, rolled back and failed deployments no longer follow the alias."""

TARGET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,149}@[A-Za-z][A-Za-z0-9_-]{0,99}$"
"""``model@alias``: a registered model's name and one of its aliases."""

_TARGET = re.compile(TARGET_PATTERN)


def parse_target(text: str) -> tuple[str, str]:
    """``"fraud-model@champion"`` -> ``("fraud-model", "champion")``.

    >>> parse_target("fraud-model@champion")
    ('fraud-model', 'champion')
    """
    if not _TARGET.match(text):
        raise ValueError(f"a target is model@alias, not {text!r}")
    model, alias = text.rsplit("@", 1)
    return model, alias


def rules_for_window(
    session: Session, *, organization: str, deployment: str
) -> Sequence[AlertRule]:
    """The enabled rules of ``organization`` that evaluate ``deployment``'s windows now."""
    following = (
        select(AlertRule.id)
        .join(
            RegisteredModel,
            and_(
                RegisteredModel.org_id == AlertRule.org_id,
                RegisteredModel.name == AlertRule.target_model,
            ),
        )
        .join(
            ModelAlias,
            and_(
                ModelAlias.model_id == RegisteredModel.id,
                ModelAlias.alias == AlertRule.target_alias,
            ),
        )
        .join(Deployment, Deployment.model_version_id == ModelAlias.version_id)
        .where(
            AlertRule.org_id == organization,
            Deployment.org_id == organization,
            Deployment.id == deployment,
            Deployment.state.in_(SERVING_STATES),
        )
    )
    return session.scalars(
        select(AlertRule).where(
            AlertRule.org_id == organization,
            AlertRule.enabled.is_(True),
            or_(AlertRule.deployment == deployment, AlertRule.id.in_(following)),
        )
    ).all()


def rules_left_behind(
    session: Session, *, organization: str, deployment: str, applicable: Sequence[str]
) -> Sequence[AlertRule]:
    """Enabled target rules, not among ``applicable``, with alerts pending or firing here.

    Their alias moved away from ``deployment``, or it stopped serving the version.
    """
    hot_here = select(AlertState.id).where(
        AlertState.org_id == organization,
        AlertState.rule_id == AlertRule.id,
        AlertState.deployment == deployment,
        AlertState.state.in_(("pending", "firing")),
    )
    return session.scalars(
        select(AlertRule).where(
            AlertRule.org_id == organization,
            AlertRule.enabled.is_(True),
            AlertRule.target_model.is_not(None),
            AlertRule.id.not_in(applicable),
            hot_here.exists(),
        )
    ).all()
