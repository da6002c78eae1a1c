"""What the application holds for its lifetime: settings, database, keys, limiter, probes.

``secret_box`` seals and opens the notification channels' secrets stored in the database.

Built once by :func:`control_api.app.create_app` and reached by the dependencies through
``request.app.state.ctx``; nothing here reads the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from control_api.auth.passwords import PasswordHasher
from control_api.auth.tokens import TokenCodec
from control_api.cache import Cache, NoCache
from control_api.fastpath import FastReads
from control_api.generations import Generations
from control_api.monitors.changes import MonitorChanges, MonitorWatch
from control_api.observability import ApiMetrics
from control_api.ratelimit import RateLimiter
from control_api.session_gate import SessionGate
from driftline.settings import Settings
from engine.embedded import EngineHub
from storage.secretbox import SecretBox

if TYPE_CHECKING:
    from control_api.runtime import DeliveryLoop

__all__ = ["ApiContext"]


@dataclass
class ApiContext:
    """The long-lived parts of one API application."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    codec: TokenCodec
    hasher: PasswordHasher
    limiter: RateLimiter
    metrics: ApiMetrics
    secret_box: SecretBox
    session_gate: SessionGate
    redis: redis.Redis | None = None
    metrics_probe: Callable[[], None] | None = None
    engine_hub: EngineHub | None = None
    delivery: DeliveryLoop | None = None
    cache: Cache = field(default_factory=NoCache)
    # with Redis: generations moved on by commits; the event loop's reads (set in the lifespan)
    generations: Generations | None = None
    fast: FastReads | None = None
    monitor_changes: MonitorChanges = field(default_factory=MonitorChanges)
    monitor_watch: MonitorWatch | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
