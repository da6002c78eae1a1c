"""Roles, permissions and who may do what: one map, checked by one dependency (:mod:`deps`).

Roles are ordered (owner > admin > editor > viewer) and each includes the permissions of
the roles below it. Viewers read; editors write resources; admins manage users and API
keys; owners manage the organization. API keys carry scopes instead of a role.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = ["API_KEY_SCOPES", "ROLE_PERMISSIONS", "Permission", "Role", "Scope"]


class Role(IntEnum):
    """A member's role in an organization, ordered by power."""

    VIEWER = 1
    EDITOR = 2
    ADMIN = 3
    OWNER = 4

    @property
    def label(self) -> str:
        """The role's name as the API shows it (``"admin"``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> Role:
        """The role named ``label`` (``"editor"`` -> :attr:`EDITOR`)."""
        return cls[label.upper()]


class Scope(StrEnum):
    """What an API key may do."""

    INGEST = "ingest"
    READ = "read"


class Permission(StrEnum):
    """An action on a kind of resource."""

    SESSIONS_OWN = "sessions:own"
    PROJECTS_READ = "projects:read"
    PROJECTS_WRITE = "projects:write"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    API_KEYS_MANAGE = "api_keys:manage"
    ORG_MANAGE = "org:manage"
    INGEST = "events:ingest"
    MODELS_READ = "models:read"
    MODELS_WRITE = "models:write"
    MODELS_APPROVE = "models:approve"
    DEPLOYMENTS_READ = "deployments:read"
    DEPLOYMENTS_WRITE = "deployments:write"
    REFERENCES_READ = "references:read"
    REFERENCES_WRITE = "references:write"
    MONITORS_READ = "monitors:read"
    MONITORS_WRITE = "monitors:write"
    METRICS_READ = "metrics:read"
    EXPERIMENTS_READ = "experiments:read"
    EXPERIMENTS_WRITE = "experiments:write"
    LINEAGE_READ = "lineage:read"
    ALERTS_READ = "alerts:read"
    ALERTS_WRITE = "alerts:write"
    CHANNELS_MANAGE = "channels:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"


_REGISTRY_READ = frozenset(
    {
        Permission.MODELS_READ,
        Permission.DEPLOYMENTS_READ,
        Permission.REFERENCES_READ,
        Permission.MONITORS_READ,
        Permission.METRICS_READ,
    }
)
_REGISTRY_WRITE = frozenset(
    {
        Permission.MODELS_WRITE,
        Permission.DEPLOYMENTS_WRITE,
        Permission.REFERENCES_WRITE,
        Permission.MONITORS_WRITE,
    }
)

_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset(
        {Permission.SESSIONS_OWN, Permission.PROJECTS_READ, Permission.USERS_READ}
    )
    | _REGISTRY_READ,
    Role.EDITOR: frozenset({Permission.PROJECTS_WRITE}) | _REGISTRY_WRITE,
    Role.ADMIN: frozenset(
        {Permission.USERS_MANAGE, Permission.API_KEYS_MANAGE, Permission.MODELS_APPROVE}
    ),
    Role.OWNER: frozenset({Permission.ORG_MANAGE}),
}

# alerting (issue 7): viewers read alerts, rules, channels (without secrets) and silences;
# editors write rules and silences and acknowledge; admins manage channels and routing
_ALERT_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.ALERTS_READ}),
    Role.EDITOR: frozenset({Permission.ALERTS_WRITE}),
    Role.ADMIN: frozenset({Permission.CHANNELS_MANAGE}),
}
for _role, _granted in _ALERT_GRANTS.items():
    _GRANTS[_role] = _GRANTS[_role] | _granted

# experiments and runs (issue 6): viewers read them, editors write them; the lineage read
# (alert -> deployment -> model version -> run) goes to those who read all four
_EXPERIMENT_READS = frozenset({Permission.EXPERIMENTS_READ, Permission.LINEAGE_READ})
_GRANTS[Role.VIEWER] = _GRANTS[Role.VIEWER] | _EXPERIMENT_READS
_GRANTS[Role.EDITOR] = _GRANTS[Role.EDITOR] | {Permission.EXPERIMENTS_WRITE}

# deployment webhooks (issue 6): admins manage the subscriptions and read their delivery
# log, like alert channels; reading the subscriptions (never their secrets) is a deployment read
_GRANTS[Role.ADMIN] = _GRANTS[Role.ADMIN] | {Permission.WEBHOOKS_MANAGE}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    role: frozenset().union(*(_GRANTS[r] for r in Role if r <= role)) for role in Role
}
"""Every permission of each role, its own and those of the roles below it."""

API_KEY_SCOPES: dict[Scope, frozenset[Permission]] = {
    Scope.INGEST: frozenset({Permission.INGEST}),
    Scope.READ: frozenset({Permission.PROJECTS_READ}) | _REGISTRY_READ,
}
"""The permissions an API key gets from each of its scopes."""
API_KEY_SCOPES[Scope.READ] |= {Permission.ALERTS_READ}  # alerting (issue 7)
API_KEY_SCOPES[Scope.READ] |= _EXPERIMENT_READS  # experiments and lineage (issue 6)
