"""Mirror of the registry in MLflow, through one service account and ``MlflowClient``.

Driftline owns identity, tenancy and RBAC; MLflow only holds a copy. Each organization
gets its own namespace as a name prefix, ``<organization slug>.``: the model ``fraud`` of
the organization ``acme`` is ``acme.fraud`` in MLflow, and an import only looks at names
with the caller's prefix. Aliases are mirrored (MLflow stages are deprecated since 2.9);
an archived version is tagged ``driftline.archived=true``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from control_api.errors import ApiError

__all__ = ["MlflowRegistry", "MlflowUnavailable", "MlflowVersion", "RemoteModel"]

ARCHIVED_TAG = "driftline.archived"


class MlflowUnavailable(ApiError):  # noqa: N818 - HTTP names
    """MLflow could not be reached or refused the call (503)."""

    status = 503
    kind = "/problems/mlflow-unavailable"


@dataclass(frozen=True)
class MlflowVersion:
    """A model version as MLflow holds it."""

    number: int
    description: str
    source: str
    run_id: str
    tags: dict[str, str]


@dataclass(frozen=True)
class RemoteModel:
    """A registered model of the organization's namespace in MLflow (name without prefix)."""

    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]
    versions: list[MlflowVersion] = field(default_factory=list)


class MlflowRegistry:
    """The registry calls Driftline makes on MLflow for one organization."""

    def __init__(self, tracking_uri: str, *, namespace: str) -> None:
        from mlflow import MlflowClient

        self._client: Any = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.prefix = f"{namespace}."

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return getattr(self._client, method)(*args, **kwargs)
        except MlflowException as error:
            raise MlflowUnavailable(f"MLflow refused {method}: {error.message}") from error
        except OSError as error:
            raise MlflowUnavailable(f"MLflow could not be reached: {error}") from error

    def remote_name(self, name: str) -> str:
        """The MLflow name of the model ``name`` (``acme.fraud``)."""
        return f"{self.prefix}{name}"

    def create_model(self, name: str, *, description: str, tags: dict[str, str]) -> None:
        """Create the model in MLflow; an existing one is reused as it is."""
        from mlflow.exceptions import MlflowException

        try:
            self._client.create_registered_model(
                self.remote_name(name), tags=tags, description=description
            )
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise MlflowUnavailable(f"MLflow refused the model: {error.message}") from error

    def create_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str,
        description: str,
        tags: dict[str, str],
    ) -> int:
        """Create a version in MLflow; returns the number MLflow gave it."""
        version = self._call(
            "create_model_version",
            self.remote_name(name),
            source=source,
            run_id=run_id or None,
            tags=tags,
            description=description,
        )
        return int(version.version)

    def set_alias(self, name: str, alias: str, number: int) -> None:
        """Point ``alias`` at version ``number``."""
        self._call("set_registered_model_alias", self.remote_name(name), alias, str(number))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias``."""
        self._call("delete_registered_model_alias", self.remote_name(name), alias)

    def archive(self, name: str, number: int) -> None:
        """Mark version ``number`` archived (a tag: MLflow stages are deprecated)."""
        self._call(
            "set_model_version_tag", self.remote_name(name), str(number), ARCHIVED_TAG, "true"
        )

    def list_models(self) -> list[RemoteModel]:
        """Every model of this namespace with its versions and aliases."""
        escaped = self.prefix.replace("'", "\\'")
        models = self._call(
            "search_registered_models", filter_string=f"name LIKE '{escaped}%'", max_results=1000
        )
        found = []
        for model in models:
            if not model.name.startswith(self.prefix):
                continue  # LIKE treats _ and % as wildcards
            quoted = model.name.replace("'", "\\'")
            versions = self._call("search_model_versions", f"name='{quoted}'", max_results=10_000)
            found.append(
                RemoteModel(
                    name=model.name.removeprefix(self.prefix),
                    description=model.description or "",
                    tags=dict(model.tags or {}),
                    aliases={a: int(v) for a, v in (model.aliases or {}).items()},
                    versions=[
                        MlflowVersion(
                            number=int(v.version),
                            description=v.description or "",
                            source=v.source or "",
                            run_id=v.run_id or "",
                            tags=dict(v.tags or {}),
                        )
                        for v in versions
                    ],
                )
            )
        return found
