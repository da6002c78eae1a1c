"""Requests and responses of ``/v1/deployments``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from control_api.schemas import ORMModel, RequestModel, UtcDatetime

__all__ = [
    "AlertKind",
    "DeploymentCreate",
    "DeploymentEventRead",
    "DeploymentRead",
    "RollbackPolicy",
    "State",
    "Strategy",
    "TrafficSet",
    "Transition",
]

Strategy = Literal["direct", "blue_green", "canary", "shadow"]
State = Literal["pending", "active", "superseded", "rolled_back", "failed"]
AlertKind = Literal["degradation", "drift", "latency", "error_rate"]


def _degradation_only() -> list[AlertKind]:
    return ["degradation"]


class RollbackPolicy(RequestModel):
    """Roll back automatically when an alert of one of ``on`` fires for this deployment."""

    enabled: bool = False
    on: list[AlertKind] = Field(default_factory=_degradation_only, max_length=4)


class DeploymentCreate(RequestModel):
    """A new deployment (state ``pending``) of a model version in an environment.

    Deployments sharing ``name`` and ``environment`` form a slot with at most one active.
    A canary walks ``traffic_steps`` (percentages, increasing, the last below 100); it
    starts at the first. Blue-green and shadow start at 0 % (idle slot, mirrored traffic).
    """

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    environment: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    endpoint: str = Field(default="", max_length=1000)
    replicas: int = Field(default=1, ge=0, le=10_000)
    model_id: str = Field(min_length=1, max_length=36)
    model_version: int = Field(ge=1, le=2**31 - 1)
    strategy: Strategy = "direct"
    traffic_steps: list[int] = Field(default_factory=list, max_length=20)
    rollback_policy: RollbackPolicy = Field(default_factory=RollbackPolicy)

    @model_validator(mode="after")
    def _steps(self) -> DeploymentCreate:
        steps = self.traffic_steps
        if self.strategy != "canary":
            if steps:
                raise ValueError("only canary deployments have traffic steps")
            return self
        if not steps:
            raise ValueError("a canary needs traffic steps, e.g. [5, 25, 50]")
        if any(not 0 < s < 100 for s in steps) or steps != sorted(set(steps)):
            raise ValueError("traffic steps are increasing percentages between 1 and 99")
        return self


class DeploymentRead(ORMModel):
    """A deployment; ``version`` grows at each transition (also its ETag)."""

    id: str
    name: str
    environment: str
    endpoint: str
    replicas: int
    model_id: str
    model_version_id: str
    strategy: str
    state: str
    traffic_steps: list[int]
    traffic_percent: int
    previous_id: str | None
    rollback_policy: RollbackPolicy
    version: int
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime


class Transition(RequestModel):
    """Why a transition is made; recorded in the audit trail."""

    reason: str = Field(default="", max_length=2_000)


class TrafficSet(Transition):
    """The canary's new share of traffic, in percent (100: use promote)."""

    percent: int = Field(ge=0, le=99)


class DeploymentEventRead(ORMModel):
    """One audited transition: who, when, why, from which state to which."""

    id: str
    deployment_id: str
    action: str
    from_state: str | None
    to_state: str
    traffic_percent: int
    actor: str
    reason: str
    created_at: UtcDatetime
