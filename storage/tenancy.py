"""Tenancy enforced in one place: every ORM statement is scoped to the session's organization.

A session carries its organization in ``session.info["org_id"]`` (set with :func:`scope_to`).
A listener on ``do_orm_execute`` adds ``org_id = :org`` (``with_loader_criteria``) to every
SELECT, UPDATE and DELETE that touches a :class:`~storage.models.TenantScoped` model, so a
repository that forgets the filter still cannot read or change another tenant's rows. A
session with no organization that touches such a model raises :class:`TenancyError`, unless
the caller opted out explicitly with :func:`unscoped` (login, where the tenant is what is
being looked up).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from storage.errors import StorageError
from storage.models import TenantScoped

__all__ = ["TenancyError", "organization_of", "scope_to", "unscoped"]

_ORG = "org_id"
_UNSCOPED = "tenancy_unscoped"


class TenancyError(StorageError):
    """A tenant-scoped model was queried on a session that has no organization."""


def scope_to(session: Session, org_id: str) -> Session:
    """Bind ``session`` to the organization ``org_id``; returns the session."""
    session.info[_ORG] = org_id
    return session


def organization_of(session: Session) -> str | None:
    """The organization ``session`` is bound to (:func:`scope_to`), or ``None``."""
    org_id: str | None = session.info.get(_ORG)
    return org_id


@contextmanager
def unscoped(session: Session) -> Iterator[Session]:
    """Let ``session`` see every organization's rows inside the block (explicit opt-out)."""
    previous = session.info.get(_UNSCOPED, False)
    session.info[_UNSCOPED] = True
    try:
        yield session
    finally:
        session.info[_UNSCOPED] = previous


def _touches_tenant_rows(state: ORMExecuteState) -> bool:
    return any(issubclass(mapper.class_, TenantScoped) for mapper in state.all_mappers)


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return  # the parent row was already scoped
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.session.info.get(_UNSCOPED, False) or not _touches_tenant_rows(state):
        return
    org_id = state.session.info.get(_ORG)
    if org_id is None:
        raise TenancyError("tenant-scoped query on a session without an organization")
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.org_id == org_id,
            include_aliases=True,
            track_closure_variables=True,
        )
    )
