"""Projects of one organization: create, read, list, update (If-Match), delete.

Reads of one project go through the cache (:mod:`control_api.cache`); an update or a
delete invalidates it after its commit, so the next read sees the change. Pages of the list
are cached under the organization's ``project-pages`` generation, which every committed
write to a project moves on (:mod:`control_api.generations`). The ``*_json`` reads serve the
routes from Redis on the event loop and go to the database on a worker thread on a miss.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from control_api.cache import Cache, Cached
from control_api.errors import Conflict, NotFound, PreconditionFailed, PreconditionRequired
from control_api.fastpath import FastReads
from control_api.generations import PROJECT_PAGES
from control_api.projects import repository
from control_api.projects.repository import ProjectSort
from control_api.projects.schemas import ProjectCreate, ProjectRead, ProjectUpdate
from control_api.schemas import Page
from storage.models import Project

__all__ = [
    "CACHED",
    "create",
    "delete",
    "get",
    "get_json",
    "list_page_json",
    "parse_if_match",
    "update",
]

_DUPLICATE = "A project with this name already exists."
CACHED = Cached("project", TypeAdapter(ProjectRead), lambda project: project.version)
_PAGE = TypeAdapter(Page[ProjectRead])


def parse_if_match(header: str | None) -> int:
    """The version named by an ``If-Match`` header (``"3"`` or ``W/"3"``).

    >>> parse_if_match('"3"'), parse_if_match('W/"4"')
    (3, 4)
    """
    if header is None:
        raise PreconditionRequired("Send If-Match with the version (ETag) you read.")
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise PreconditionFailed("If-Match does not name a version of this project.")
    return int(tag)


def _get(session: Session, *, org_id: str, project_id: str) -> Project:
    project = repository.by_id(session, org_id=org_id, project_id=project_id)
    if project is None:
        raise NotFound("No such project.")
    return project


def create(session: Session, *, org_id: str, body: ProjectCreate) -> ProjectRead:
    """A new project in ``org_id`` (names are unique within an organization)."""
    now = datetime.now(UTC)
    project = Project(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=body.name,
        description=body.description,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(project)
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict(_DUPLICATE) from error
    return ProjectRead.model_validate(project)


def get(session: Session, *, org_id: str, project_id: str, cache: Cache) -> ProjectRead:
    """One project of ``org_id``, through the cache; 404 if missing or another organization's."""

    def load() -> ProjectRead:
        return ProjectRead.model_validate(_get(session, org_id=org_id, project_id=project_id))

    return cache.get_or_load(org_id, CACHED, project_id, load)


async def get_json(
    session: Session, *, org_id: str, project_id: str, cache: Cache, fast: FastReads | None
) -> tuple[int, bytes]:
    """One project's version and JSON: a hit from the event loop, else :func:`get`.

    While invalidations wait for replay, :func:`get` reads (its cache replays them first).
    """
    name = cache.key(org_id, CACHED.kind, project_id)
    if fast is not None and name is not None and not cache.pending:
        found = await fast.get(name, CACHED.kind)
        if found is not None:
            return found
    project = await run_in_threadpool(
        get, session, org_id=org_id, project_id=project_id, cache=cache
    )
    return project.version, CACHED.adapter.dump_json(project)


async def list_page_json(
    session: Session,
    *,
    org_id: str,
    limit: int,
    cursor: str | None,
    sort: ProjectSort,
    name_prefix: str | None,
    fast: FastReads | None,
) -> bytes:
    """A page of ``org_id``'s projects as JSON, cached when ``fast`` is given."""

    def load() -> bytes:
        rows, next_cursor = repository.page(
            session, org_id=org_id, limit=limit, cursor=cursor, sort=sort, name_prefix=name_prefix
        )
        items = [ProjectRead.model_validate(r) for r in rows]
        return _PAGE.dump_json(Page(items=items, next_cursor=next_cursor))

    if fast is None:
        return await run_in_threadpool(load)
    query = repr((limit, cursor, sort, name_prefix)).encode()
    key = hashlib.blake2b(query, digest_size=16).hexdigest()
    return await fast.get_or_load(org_id, PROJECT_PAGES, key, load)


def update(
    session: Session,
    *,
    org_id: str,
    project_id: str,
    if_match: str | None,
    body: ProjectUpdate,
    cache: Cache,
) -> ProjectRead:
    """Change a project if it is still at the version named by ``if_match`` (412 if not)."""
    version = parse_if_match(if_match)
    _get(session, org_id=org_id, project_id=project_id)
    values = body.model_dump(exclude_unset=True, exclude_none=True)
    try:
        applied = repository.compare_and_update(
            session, org_id=org_id, project_id=project_id, version=version, values=values
        )
    except IntegrityError as error:
        session.rollback()
        raise Conflict(_DUPLICATE) from error
    if not applied:
        session.rollback()
        raise PreconditionFailed("The project changed since you read it; read it again.")
    session.commit()
    cache.invalidate(org_id, CACHED, project_id, version=version + 1)
    session.expire_all()
    return ProjectRead.model_validate(_get(session, org_id=org_id, project_id=project_id))


def delete(session: Session, *, org_id: str, project_id: str, cache: Cache) -> None:
    """Delete a project of ``org_id``."""
    session.delete(_get(session, org_id=org_id, project_id=project_id))
    session.commit()
    cache.invalidate(org_id, CACHED, project_id, version=None)
