"""Reference datasets of one organization: upload, validate, fit a profile, store both.

An upload is checked in this order, each failure a problem with a clear message: size
(413), format (415: ``.csv`` or ``.parquet``), readable (422), at least one row and one
usable column, no column that is entirely empty (422), then the profile is fitted
(:meth:`detectors.ReferenceProfile.fit`: numeric dtypes are numeric features, the rest
categorical). The file and the profile JSON go to the object store under
``references/<id>/``; the row keeps the metadata. Uploading the same name again makes the
next version.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any, BinaryIO

import polars as pl
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_api.errors import ApiError, Conflict, InvalidInput, NotFound
from control_api.references import repository
from control_api.references.schemas import ProfileRead, ReferenceRead
from control_api.schemas import Page
from detectors import ReferenceProfile
from detectors.errors import DetectorInputError
from storage.errors import ObjectNotFound, ObjectTooLarge
from storage.models import ReferenceDataset
from storage.objects import ObjectStore

__all__ = [
    "ReferenceTooLarge",
    "UnsupportedFormat",
    "get",
    "list_page",
    "load_profile",
    "profile",
    "upload",
]

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class ReferenceTooLarge(ApiError):  # noqa: N818 - HTTP names
    """The dataset is larger than the configured limit (413)."""

    status = 413
    kind = "/problems/reference-too-large"


class UnsupportedFormat(ApiError):  # noqa: N818 - HTTP names
    """Neither CSV nor Parquet (415)."""

    status = 415
    kind = "/problems/unsupported-format"


def _format(filename: str) -> str:
    lowered = filename.lower()
    for suffix, kind in _FORMATS.items():
        if lowered.endswith(suffix):
            return kind
    raise UnsupportedFormat("Upload a .csv or a .parquet file.")


def _size(data: BinaryIO) -> int:
    data.seek(0, io.SEEK_END)
    size = data.tell()
    data.seek(0)
    return size


def _read(data: BinaryIO, file_format: str) -> pl.DataFrame:
    try:
        frame = pl.read_csv(data) if file_format == "csv" else pl.read_parquet(data)
    except Exception as error:  # polars and pyarrow raise many kinds for a bad file
        raise InvalidInput(f"The file is not a readable {file_format.upper()} file.") from error
    if frame.width == 0 or frame.height == 0:
        raise InvalidInput("The dataset needs at least one column and one row.")
    names = frame.columns
    blank = [i for i, name in enumerate(names) if not name.strip()]
    if blank:
        raise InvalidInput(f"Columns at positions {blank} have no name.")
    empty = [name for name in names if frame[name].null_count() == frame.height]
    if empty:
        raise InvalidInput(f"Columns with no value at all: {empty}.")
    return frame


def _fit(frame: pl.DataFrame) -> ReferenceProfile:
    try:
        return ReferenceProfile.fit(frame)
    except (DetectorInputError, ValueError, TypeError) as error:
        raise InvalidInput(f"No profile can be fitted on this dataset: {error}") from error


def upload(
    session: Session,
    *,
    org_id: str,
    actor: str,
    store: ObjectStore,
    name: str,
    filename: str,
    data: BinaryIO,
    max_bytes: int,
) -> ReferenceRead:
    """Validate and store a reference dataset and its fitted profile (next version of name)."""
    size = _size(data)
    if size > max_bytes:
        raise ReferenceTooLarge(f"The dataset exceeds the limit of {max_bytes} bytes.")
    file_format = _format(filename)
    frame = _read(data, file_format)
    fitted = _fit(frame)
    reference_id = str(uuid.uuid4())
    object_key = f"references/{reference_id}/data.{file_format}"
    profile_key = f"references/{reference_id}/profile.json"
    data.seek(0)
    try:
        stored = store.put(org_id, object_key, data, content_type=f"application/{file_format}")
    except ObjectTooLarge as error:
        raise ReferenceTooLarge(str(error)) from error
    body = json.dumps(fitted.to_dict(), separators=(",", ":")).encode()
    store.put(org_id, profile_key, io.BytesIO(body), content_type="application/json")
    categorical = set(fitted.categorical)
    row = ReferenceDataset(
        id=reference_id,
        org_id=org_id,
        name=name,
        number=repository.last_number(session, org_id=org_id, name=name) + 1,
        file_format=file_format,
        object_key=object_key,
        profile_key=profile_key,
        size_bytes=stored.size,
        sha256=stored.sha256,
        rows=frame.height,
        columns=[
            {"name": c, "type": "categorical" if c in categorical else "numeric"}
            for c in frame.columns
        ],
        created_by=actor,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict("Another version of this name was uploaded at once; retry.") from error
    return ReferenceRead.model_validate(row)


def _get(session: Session, *, org_id: str, reference_id: str) -> ReferenceDataset:
    found = repository.by_id(session, org_id=org_id, reference_id=reference_id)
    if found is None:
        raise NotFound("No such reference dataset.")
    return found


def get(session: Session, *, org_id: str, reference_id: str) -> ReferenceRead:
    """One reference dataset of ``org_id``."""
    return ReferenceRead.model_validate(_get(session, org_id=org_id, reference_id=reference_id))


def list_page(
    session: Session, *, org_id: str, limit: int, cursor: str | None, name: str | None
) -> Page[ReferenceRead]:
    """A page of ``org_id``'s reference datasets, newest first."""
    rows, next_cursor = repository.page(
        session, org_id=org_id, limit=limit, cursor=cursor, name=name
    )
    return Page(items=[ReferenceRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def load_profile(
    session: Session, *, org_id: str, reference_id: str, store: ObjectStore
) -> dict[str, Any]:
    """The stored profile of a reference dataset, as ``ReferenceProfile.to_dict`` made it."""
    row = _get(session, org_id=org_id, reference_id=reference_id)
    try:
        raw = b"".join(store.open(org_id, row.profile_key))
    except ObjectNotFound as error:
        raise NotFound("The profile of this reference dataset is missing.") from error
    loaded: dict[str, Any] = json.loads(raw)
    return loaded


def profile(session: Session, *, org_id: str, reference_id: str, store: ObjectStore) -> ProfileRead:
    """The fitted profile of a reference dataset."""
    loaded = load_profile(session, org_id=org_id, reference_id=reference_id, store=store)
    return ProfileRead(reference_id=reference_id, profile=loaded)
