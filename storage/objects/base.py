"""The object-store interface and what both implementations share.

Objects are addressed by (organization, key); the stored name is ``<organization>/<key>``,
and both parts are validated so that no key can reach outside its organization's prefix.
Uploads are streamed: read in chunks, hashed (SHA-256) and counted on the way, refused
past ``max_bytes`` with nothing kept.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from storage.errors import InvalidObjectKey, ObjectTooLarge

__all__ = ["CHUNK_BYTES", "ObjectStore", "StoredObject", "copy_hashed", "object_name"]

CHUNK_BYTES = 1 << 20
_ORGANIZATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class StoredObject:
    """What the store knows about one object: ``size`` in bytes, ``sha256`` in hex."""

    organization: str
    key: str
    size: int
    sha256: str
    content_type: str


@runtime_checkable
class ObjectStore(Protocol):
    """Reference datasets, serialised profiles and reports, kept per organization."""

    def put(
        self,
        organization: str,
        key: str,
        data: BinaryIO,
        *,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        """Store ``data`` (read to its end, in chunks) under ``key``, replacing any object."""
        ...

    def stat(self, organization: str, key: str) -> StoredObject:
        """Size, hash and content type of an object; :class:`ObjectNotFound` if absent."""
        ...

    def open(self, organization: str, key: str) -> Iterator[bytes]:
        """Yield the object's bytes in chunks; :class:`ObjectNotFound` if absent."""
        ...

    def list(self, organization: str, prefix: str = "") -> list[str]:
        """Keys of the organization's objects that start with ``prefix``, sorted."""
        ...

    def delete(self, organization: str, key: str) -> None:
        """Remove an object; removing an absent one is not an error."""
        ...


def check_organization(organization: str) -> str:
    """``organization`` if it is a safe prefix (letters, digits, ``_``, ``-``)."""
    if not isinstance(organization, str) or not _ORGANIZATION.match(organization):
        raise InvalidObjectKey(f"invalid organization id {organization!r}")
    return organization


def check_key(key: str) -> str:
    """``key`` if every ``/``-separated segment is safe: no ``..``, no empty segment."""
    if not isinstance(key, str) or not key:
        raise InvalidObjectKey("object key must be a non-empty string")
    for segment in key.split("/"):
        if not _SEGMENT.match(segment) or segment.endswith("."):
            raise InvalidObjectKey(f"invalid object key {key!r}")
    return key


def object_name(organization: str, key: str) -> str:
    """Return the stored name ``<organization>/<key>`` after validating both parts."""
    return f"{check_organization(organization)}/{check_key(key)}"


def copy_hashed(source: BinaryIO, target: BinaryIO, *, max_bytes: int) -> tuple[int, str]:
    """Copy ``source`` to ``target`` in chunks; return (bytes, SHA-256 hex).

    Raises :class:`ObjectTooLarge` as soon as more than ``max_bytes`` were read.
    """
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise ObjectTooLarge(f"upload exceeds the limit of {max_bytes} bytes")
        digest.update(chunk)
        target.write(chunk)
    return size, digest.hexdigest()
