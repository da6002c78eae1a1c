"""The one way every engine reads monitors: :class:`MonitorService`.

The embedded engine (:class:`engine.embedded.EngineHub`) and the Kafka workers
(``driftline worker``) both call :meth:`MonitorService.monitors_for`. The list of an
organization's monitors, as ``id -> version`` (its *directory*), always comes from the
control database, which is the truth; each monitor's row and each reference profile come
through the cache (:mod:`control_api.cache`), shared with ``GET /v1/monitors/{id}``. A
cached row older than the directory's version is reloaded, so a lost invalidation never
makes an engine run an old monitor. Profiles never change for a reference id, so they are
cached without invalidation (the object-store read and the JSON parse are what a rebuild
costs).

The service remembers the directory each organization's monitors were last served from;
:meth:`MonitorService.changed` compares it with the database's, which is how a change
notification, or the poll that stands in for a lost one, decides to rebuild
(:mod:`control_api.monitors.changes`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_api.cache import Cache, Cached
from control_api.errors import NotFound
from control_api.monitors.repository import by_id
from control_api.monitors.schemas import MonitorRead
from control_api.references import service as references
from detectors import DetectorInputError
from engine.embedded import MonitorSource, NoMonitors
from engine.monitor import Monitor
from storage.models import MonitorConfig
from storage.objects import ObjectStore
from storage.tenancy import scope_to

__all__ = ["MONITORS", "PROFILES", "Directory", "MonitorService"]

Directory = dict[str, int]  # monitor id -> version
MONITORS = Cached("monitor", TypeAdapter(MonitorRead), lambda monitor: monitor.version)
PROFILES: Cached[dict[str, Any]] = Cached("profile", TypeAdapter(dict[str, Any]), lambda _: 0)
_log = logging.getLogger("driftline.monitors")


@dataclass
class MonitorService:
    """An organization's monitors in the engine's shape (module docstring).

    Monitors of ``fallback`` (``DRIFTLINE_MONITORS_FILE``) are added for deployments the
    control plane has none for.
    """

    sessions: sessionmaker[Session]
    store: Callable[[], ObjectStore]
    cache: Cache
    fallback: MonitorSource = field(default_factory=NoMonitors)
    _served: dict[str, Directory] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def directory(self, organization: str) -> Directory:
        """``id -> version`` of the organization's monitors, from the control database."""
        with self.sessions() as session:
            return self._directory(session, organization)

    def changed(self, organization: str) -> bool:
        """Whether the database's directory differs from the one last served."""
        current = self.directory(organization)
        with self._lock:
            return self._served.get(organization) != current

    def monitors_for(self, organization: str) -> list[Monitor]:
        """The organization's monitors, control plane first, then the fallback's."""
        configured: list[Monitor] = []
        with self.sessions() as session:
            directory = self._directory(session, organization)
            store = self.store() if directory else None
            for monitor_id, version in sorted(directory.items()):
                assert store is not None
                monitor = self._monitor(session, organization, monitor_id, version, store)
                if monitor is not None:
                    configured.append(monitor)
        with self._lock:
            self._served[organization] = directory
        taken = {m.deployment for m in configured}
        extra = [m for m in self.fallback.monitors_for(organization) if m.deployment not in taken]
        return configured + extra

    @staticmethod
    def _directory(session: Session, organization: str) -> Directory:
        scope_to(session, organization)
        rows = session.execute(
            select(MonitorConfig.id, MonitorConfig.version).where(
                MonitorConfig.org_id == organization
            )
        ).all()
        return {monitor_id: version for monitor_id, version in rows}

    def _monitor(
        self,
        session: Session,
        organization: str,
        monitor_id: str,
        version: int,
        store: ObjectStore,
    ) -> Monitor | None:
        """One monitor built for the engine, or ``None`` (logged) when it cannot be built."""

        def load_row() -> MonitorRead:
            row = by_id(session, org_id=organization, monitor_id=monitor_id)
            if row is None:
                raise NotFound("No such monitor.")
            return MonitorRead.model_validate(row)

        try:
            row = self.cache.get_or_load(
                organization, MONITORS, monitor_id, load_row, min_version=version
            )

            def load_profile() -> dict[str, Any]:
                return references.load_profile(
                    session, org_id=organization, reference_id=row.reference_id, store=store
                )

            profile = self.cache.get_or_load(organization, PROFILES, row.reference_id, load_profile)
            return Monitor.model_validate(
                {"deployment": row.deployment_id, "reference": profile, **row.spec.model_dump()}
            )
        except (NotFound, ValidationError, DetectorInputError) as error:
            # deleted meanwhile (the next change rebuilds), or a profile gone from the store
            _log.error("monitor %s of %s is not run: %s", monitor_id, organization, error)
            return None
