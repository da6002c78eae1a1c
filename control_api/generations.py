"""Per-organization generations of cached reads, moved on by every committed write.

Some cached reads depend on many rows: a caller's login session and role (kind ``auth``:
memberships and login sessions), a page of projects (kind ``project-pages``). Rather than
finding every entry a write touches, each organization has one generation per kind in Redis
(``<prefix>gen:v<FORMAT>:<organization>:<kind>:gen``, a random token); an entry
(``...:<kind>:e:<key>``) holds the generation it was read under and counts only while that is
still the current one (:mod:`control_api.fastpath` reads and fills them). A write sets a
fresh token after its commit, one command, so the next read of any entry of that kind in
that organization misses and loads from the database.

Writes are found where they happen, not where a service remembers to report them: listeners
on every session whose ``info`` carries a :class:`Generations` (the API's sessions, see
:func:`session_info`) note each ORM flush and each bulk UPDATE or DELETE of a watched model
(:data:`WATCHED`); after the commit, the noted organizations get new generations. Noted
writes that were rolled back still move the generation (a spare miss, never a stale hit).

Tokens are random and never reused, and a read that finds no generation creates one: an
evicted generation key turns the entries it guarded into misses, never back into hits.

When Redis fails, the bump is kept in the process and replayed before this process reads
Redis again (:class:`control_api.fastpath.FastReads`). Only a bump lost with its process (or
one that failed while another process kept reading Redis) leaves entries stale, for at most
the TTL they were stored with (``DRIFTLINE_CACHE_TTL_SECONDS``).
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from control_api.cache import MAX_PENDING, CacheMetrics, cache_key
from storage.models import AuthSession, Membership, Project, TenantScoped
from storage.tenancy import TenancyError, organization_of

__all__ = [
    "AUTH",
    "FORMAT",
    "PROJECT_PAGES",
    "WATCHED",
    "Generations",
    "new_token",
    "session_info",
]

FORMAT = 1
AUTH = "auth"
PROJECT_PAGES = "project-pages"
WATCHED: dict[type[TenantScoped], str] = {
    Membership: AUTH,
    AuthSession: AUTH,
    Project: PROJECT_PAGES,
}
"""The kind whose generation a write to each model moves on."""

_HANDLE = "driftline_generations"  # session.info: the Generations told after a commit
_NOTED = "driftline_generations_noted"  # session.info: {(organization, kind)} written
_log = logging.getLogger("driftline.cache")


def new_token() -> str:
    """A fresh generation: 16 random hex digits."""
    return secrets.token_hex(8)


class Generations:
    """Moves generations on after commits (synchronous: services commit on worker threads)."""

    def __init__(self, client: redis.Redis, *, prefix: str, metrics: CacheMetrics) -> None:
        self._client = client
        self.prefix = f"{prefix}gen:v{FORMAT}:"
        self.metrics = metrics
        self._lock = threading.Lock()
        self._pending: set[str] = set()  # generation keys whose bump failed, to replay

    def key(self, organization: str, kind: str) -> str | None:
        """The generation key of ``kind`` in ``organization`` (``None``: id not plain)."""
        return cache_key(self.prefix, organization, kind, "gen")

    def entry_key(self, organization: str, kind: str, key: str) -> str | None:
        """The key of entry ``key`` of ``kind`` in ``organization`` (``None``: id not plain)."""
        return cache_key(self.prefix, organization, f"{kind}:e", key)

    @property
    def pending(self) -> bool:
        """Whether bumps wait for replay (Redis failed when they were sent)."""
        return bool(self._pending)

    def bump(self, organization: str, kind: str) -> None:
        """A fresh generation for ``kind`` in ``organization``, or kept for replay."""
        name = self.key(organization, kind)
        if name is None:
            return
        try:
            self._client.set(name, new_token())
        except redis.RedisError as error:
            self.metrics.errors.labels("bump").inc()
            _log.warning("cache: a generation bump failed (%s); replayed later", error)
            self.remember(name)

    def take_pending(self) -> list[str]:
        """The keys to bump again, handed over (give back with :meth:`remember` on failure)."""
        with self._lock:
            names, self._pending = list(self._pending), set()
        return names

    def remember(self, name: str) -> None:
        """Keep a failed bump of generation key ``name`` for replay."""
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                _log.error("cache: too many bumps to replay; %s may be stale", name)
                return
            self._pending.add(name)


def session_info(generations: Generations) -> dict[str, Any]:
    """The ``info`` of sessions whose committed writes move ``generations`` on."""
    return {_HANDLE: generations}


def _note(session: Session, organization: str, kind: str) -> None:
    session.info.setdefault(_NOTED, set()).add((organization, kind))


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _flush: UOWTransaction) -> None:
    if _HANDLE not in session.info:
        return
    for row in itertools.chain(session.new, session.dirty, session.deleted):
        kind = WATCHED.get(type(row))
        if kind is not None:
            _note(session, row.org_id, kind)


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_write(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or _HANDLE not in state.session.info:
        return
    kinds = {WATCHED[m.class_] for m in state.all_mappers if m.class_ in WATCHED}
    if not kinds:
        return
    organization = organization_of(state.session)
    if organization is None:
        # storage.tenancy refuses such a statement too, unless unscoped(): a bulk write to a
        # cached table must name the one organization whose entries it outdates
        raise TenancyError("a bulk write to a cached table needs the session's organization")
    for kind in kinds:
        _note(state.session, organization, kind)


@event.listens_for(Session, "after_commit")
def _bump_after_commit(session: Session) -> None:
    noted = session.info.pop(_NOTED, None)
    if noted:
        generations: Generations = session.info[_HANDLE]
        for organization, kind in noted:
            generations.bump(organization, kind)
