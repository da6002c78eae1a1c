"""Cursor (keyset) pagination: stable under inserts, no OFFSET scans.

A page is ordered by one sort column and then by ``id`` (a unique tie-breaker); the cursor
is the last row's pair, base64url-encoded JSON, opaque to clients. The next page holds the
rows strictly after that pair in the chosen direction.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from control_api.errors import ApiError

__all__ = ["InvalidCursor", "decode_cursor", "encode_cursor", "fetch_page"]


class InvalidCursor(ApiError):  # noqa: N818 - HTTP-style name
    """The cursor was not made by us, or for another sort order (400)."""

    status = 400
    kind = "/problems/invalid-cursor"


def encode_cursor(value: Any, row_id: str) -> str:
    """The opaque cursor after the row with sort ``value`` and ``row_id``.

    >>> decode_cursor(encode_cursor("alpha", "id-1"))
    ['alpha', 'id-1']
    """
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The ``[value, id]`` pair inside ``cursor``; :class:`InvalidCursor` if it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        pair = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise InvalidCursor("The cursor is not valid.") from error
    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str)) or (
        "\x00" in raw.decode("utf-8", "replace") or "\x00" in json.dumps(pair, ensure_ascii=False)
    ):
        raise InvalidCursor("The cursor is not valid.")
    return pair


def fetch_page(
    session: Session,
    statement: Select[Any],
    *,
    sort: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[str],
    descending: bool,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Any], str | None]:
    """Run ``statement`` for one page of ``limit`` rows after ``cursor``.

    Returns the rows and the next cursor (``None`` on the last page).
    """
    if cursor is not None:
        value, last_id = decode_cursor(cursor)
        if isinstance(sort.type.python_type, type) and sort.type.python_type is datetime:
            try:
                value = datetime.fromisoformat(str(value))
            except ValueError as error:
                raise InvalidCursor("The cursor is not valid.") from error
        elif not isinstance(value, str | int):
            raise InvalidCursor("The cursor is not valid.")
        after = (
            or_(sort < value, and_(sort == value, id_column < last_id))
            if descending
            else or_(sort > value, and_(sort == value, id_column > last_id))
        )
        statement = statement.where(after)
    order = (sort.desc(), id_column.desc()) if descending else (sort.asc(), id_column.asc())
    rows: Sequence[Any] = session.scalars(statement.order_by(*order).limit(limit + 1)).all()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(getattr(last, sort.key), getattr(last, id_column.key))
