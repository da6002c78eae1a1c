"""The alert states and outbox rows as the evaluator reads and writes them: few statements.

The evaluator reads, in its transaction, only the rows a window may change: the pending
and firing rows of the window's rules (:func:`hot`) and the rows of series that turn
active (:func:`by_fingerprint`). It writes new rows, changed rows and outbox rows as one
executemany statement each (:func:`write`). Every statement here names the organization
itself (Core statements bypass :mod:`storage.tenancy`'s ORM listener).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, literal_column, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from engine.alerts.lifecycle import Series
from storage.models import AlertOutbox, AlertState

__all__ = [
    "CHUNK",
    "Rows",
    "Stored",
    "by_fingerprint",
    "evaluated",
    "hot",
    "hot_on",
    "watermark",
    "write",
]

CHUNK = 500
"""Fingerprints per ``IN (...)`` list (SQLite allows 32,766 bound values per statement)."""

_STATES: Table = AlertState.__table__  # type: ignore[assignment]
_OUTBOX: Table = AlertOutbox.__table__  # type: ignore[assignment]
_c = _STATES.c
_LIFECYCLE = (
    _c.id,
    _c.fingerprint,
    _c.seq,
    _c.state,
    _c.value,
    _c.streak,
    _c.active_since_ms,
    _c.last_active_ms,
    _c.fired_at_ms,
    _c.resolved_at_ms,
    _c.evaluated_at_ms,
)


@dataclass(frozen=True)
class Stored:
    """One series as stored: its row id, its transition count (``seq``) and its lifecycle."""

    id: str
    seq: int
    series: Series


def _stored(row: Any) -> tuple[str, Stored]:
    series = Series(
        state=row.state,
        value=row.value,
        streak=row.streak,
        active_since_ms=row.active_since_ms,
        last_active_ms=row.last_active_ms,
        fired_at_ms=row.fired_at_ms,
        resolved_at_ms=row.resolved_at_ms,
        evaluated_at_ms=row.evaluated_at_ms,
    )
    return row.fingerprint, Stored(row.id, row.seq, series)


def hot(session: Session, org_id: str, rule_ids: Sequence[str]) -> dict[str, Stored]:
    """The pending and firing series of ``rule_ids``, by fingerprint.

    Every other stored series of these rules is inactive or resolved: an inactive window
    leaves it as it is (see :mod:`engine.alerts.lifecycle`).
    """
    org: ColumnElement[Any] = _c.org_id
    rule: ColumnElement[Any] = _c.rule_id
    if session.get_bind().dialect.name == "sqlite":
        # without table statistics SQLite reads every row of the rules through their index;
        # a unary + keeps those two indexes out of the plan, leaving the few hot rows'
        org, rule = literal_column("+alert_states.org_id"), literal_column("+alert_states.rule_id")
    statement = select(*_LIFECYCLE).where(
        org == org_id, rule.in_(rule_ids), _c.state.in_(("pending", "firing"))
    )
    return dict(_stored(row) for row in session.execute(statement))


def hot_on(
    session: Session, org_id: str, rule_id: str, deployment: str
) -> list[tuple[str, dict[str, str], Stored]]:
    """The pending and firing series of ``rule_id`` on ``deployment``: fingerprint, labels, row."""
    statement = select(*_LIFECYCLE, _c.labels).where(
        _c.org_id == org_id,
        _c.rule_id == rule_id,
        _c.deployment == deployment,
        _c.state.in_(("pending", "firing")),
    )
    found = []
    for row in session.execute(statement):
        fp, stored = _stored(row)
        found.append((fp, dict(row.labels), stored))
    return found


def by_fingerprint(session: Session, org_id: str, fingerprints: Sequence[str]) -> dict[str, Stored]:
    """The stored series among ``fingerprints`` (absent ones have no row)."""
    found: dict[str, Stored] = {}
    for i in range(0, len(fingerprints), CHUNK):
        statement = select(*_LIFECYCLE).where(
            _c.org_id == org_id, _c.fingerprint.in_(fingerprints[i : i + CHUNK])
        )
        found.update(_stored(row) for row in session.execute(statement))
    return found


def evaluated(session: Session, org_id: str, rule_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Every stored series of ``rule_id`` and, per deployment, its :func:`watermark`.

    The series as fingerprint -> ``evaluated_at_ms``.
    """
    statement = select(_c.fingerprint, _c.deployment, _c.evaluated_at_ms).where(
        _c.org_id == org_id, _c.rule_id == rule_id
    )
    series: dict[str, int] = {}
    latest: dict[str, int] = {}
    for fp, deployment, at in session.execute(statement):
        series[fp] = at
        latest[deployment] = max(at, latest.get(deployment, at))
    return series, latest


def watermark(session: Session, org_id: str, rule_id: str, deployment: str) -> int | None:
    """The end of the last window of ``deployment`` that ``rule_id`` was evaluated on.

    The largest ``evaluated_at_ms`` of the rule's rows there: the evaluator writes it into
    one row at every window it evaluates, even when every series stays as it was.
    """
    statement = select(func.max(_c.evaluated_at_ms)).where(
        _c.org_id == org_id, _c.rule_id == rule_id, _c.deployment == deployment
    )
    return session.execute(statement).scalar()


@dataclass
class Rows:
    """One window close's writes, as column dictionaries, in evaluation order.

    ``changed`` rows hold ``row_id`` and the columns to set; ``fired`` are changed rows
    that moved to firing (their acknowledgement is cleared too). ``seen`` move the
    ``evaluated_at_ms`` of unchanged rows (``fingerprint``) to ``end_ms``: one per rule and
    window where no row of the rule changed, so that :func:`watermark` stays true.
    """

    new: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    fired: list[dict[str, Any]] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


def _update(org_id: str, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row | {"row_org": org_id} for row in rows]


def _update_by_id(session: Session, org_id: str, rows: list[dict[str, Any]]) -> None:
    """Set each row's columns (the same names in every row), by ``row_id``.

    SQLite runs an executemany in process. psycopg2 would make it one round trip per row,
    so PostgreSQL gets one statement over arrays instead: ``UPDATE ... FROM unnest(...)``,
    one array per column (its text is the same at every call, so it is compiled once).
    """
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        by_id = update(_STATES).where(
            _c.id == bindparam("row_id"), _c.org_id == bindparam("row_org")
        )
        session.execute(by_id, _update(org_id, rows))
        return
    names = [name for name in rows[0] if name != "row_id"]
    arrays = ", ".join(
        f"CAST(:{name} AS {_c[name].type.compile(dialect=dialect)}[])" for name in names
    )
    assignments = ", ".join(f"{name} = u.{name}" for name in names)
    statement = text(
        f"UPDATE alert_states SET {assignments} "  # column names, never input
        f"FROM unnest(CAST(:row_id AS VARCHAR[]), {arrays}) AS u(row_id, {', '.join(names)}) "
        "WHERE alert_states.id = u.row_id AND alert_states.org_id = :org_id"
    )
    params: dict[str, Any] = {"org_id": org_id, "row_id": [row["row_id"] for row in rows]}
    for name in names:
        process = _c[name].type.bind_processor(dialect)
        column_values = [row[name] for row in rows]
        params[name] = [process(v) for v in column_values] if process else column_values
    session.execute(statement, params)


def write(session: Session, org_id: str, rows: Rows) -> None:
    """Insert the new states, update the changed ones, insert the outbox rows.

    In the session's transaction (the caller commits): notifications are committed with
    the state changes that cause them, or not at all.
    """
    if rows.new:
        session.execute(insert(_STATES), rows.new)
    for changed in (rows.changed, rows.fired):
        if changed:
            _update_by_id(session, org_id, changed)
    if rows.seen:
        seen = (
            update(_STATES)
            .where(
                _c.org_id == bindparam("row_org"),
                _c.fingerprint == bindparam("row_fp"),
                _c.evaluated_at_ms < bindparam("end_ms"),
            )
            .values(evaluated_at_ms=bindparam("end_ms"))
        )
        session.execute(seen, _update(org_id, rows.seen))
    if rows.outbox:
        session.execute(insert(_OUTBOX), rows.outbox)
