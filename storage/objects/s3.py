"""Object store on any S3 API (MinIO, AWS S3, moto) through the minio client.

An upload is first spooled (up to 8 MiB in memory, then a temporary file) while its size
is checked and its SHA-256 computed, then sent with its length known: objects larger than
``part_size`` go up as a multipart upload, part by part, and the hash is stored as the
object's ``x-amz-meta-sha256``. An upload refused for its size never reaches S3.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import BinaryIO, cast

from minio import Minio
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError

from storage.errors import ObjectNotFound, StorageUnavailable
from storage.objects.base import (
    CHUNK_BYTES,
    StoredObject,
    check_organization,
    copy_hashed,
    object_name,
)

__all__ = ["S3ObjectStore"]

_SPOOL_BYTES = 8 << 20
_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"}


class S3ObjectStore:
    """Objects in one bucket (created if missing), named ``<organization>/<key>``."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        *,
        max_bytes: int = 1 << 30,
        part_size: int = 16 << 20,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.max_bytes = max_bytes
        self.part_size = part_size
        try:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
        except (MinioException, HTTPError) as error:
            raise StorageUnavailable(f"S3 bucket {bucket!r}: {error}", attempts=1) from error

    @classmethod
    def connect(
        cls,
        endpoint: str,
        *,
        bucket: str,
        access_key: str,
        secret_key: str,
        secure: bool = True,
        region: str | None = None,
        max_bytes: int = 1 << 30,
    ) -> S3ObjectStore:
        """Open a store on ``endpoint`` (``host:port``, no scheme)."""
        client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
        return cls(client, bucket, max_bytes=max_bytes)

    def put(
        self,
        organization: str,
        key: str,
        data: BinaryIO,
        *,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        """Store ``data``; see :class:`storage.objects.base.ObjectStore`."""
        name = object_name(organization, key)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spooled:
            spool = cast(BinaryIO, spooled)
            size, sha256 = copy_hashed(data, spool, max_bytes=self.max_bytes)
            spool.seek(0)
            try:
                self.client.put_object(
                    self.bucket,
                    name,
                    spool,
                    length=size,
                    content_type=content_type,
                    metadata={"sha256": sha256},
                    part_size=self.part_size,
                )
            except (MinioException, HTTPError) as error:
                raise StorageUnavailable(f"S3 upload of {name}: {error}", attempts=1) from error
        return StoredObject(organization, key, size, sha256, content_type)

    def stat(self, organization: str, key: str) -> StoredObject:
        """Size, hash and content type of an object."""
        name = object_name(organization, key)
        try:
            info = self.client.stat_object(self.bucket, name)
        except S3Error as error:
            raise self._translate(error, name) from error
        metadata = {k.lower(): v for k, v in (info.metadata or {}).items()}
        return StoredObject(
            organization,
            key,
            int(info.size or 0),
            str(metadata.get("x-amz-meta-sha256", "")),
            str(info.content_type or "application/octet-stream"),
        )

    def open(self, organization: str, key: str) -> Iterator[bytes]:
        """Yield the object's bytes, streamed in chunks."""
        name = object_name(organization, key)
        try:
            response = self.client.get_object(self.bucket, name)
        except S3Error as error:
            raise self._translate(error, name) from error
        return self._chunks(response)

    @staticmethod
    def _chunks(response: object) -> Iterator[bytes]:
        try:
            yield from response.stream(CHUNK_BYTES)  # type: ignore[attr-defined]
        finally:
            response.close()  # type: ignore[attr-defined]
            response.release_conn()  # type: ignore[attr-defined]

    def list(self, organization: str, prefix: str = "") -> list[str]:
        """Keys of the organization's objects starting with ``prefix``."""
        base = f"{check_organization(organization)}/"
        found = self.client.list_objects(self.bucket, prefix=base + prefix, recursive=True)
        return sorted(str(o.object_name)[len(base) :] for o in found)

    def delete(self, organization: str, key: str) -> None:
        """Remove an object (absent is fine)."""
        self.client.remove_object(self.bucket, object_name(organization, key))

    @staticmethod
    def _translate(error: S3Error, name: str) -> Exception:
        if error.code in _MISSING:
            return ObjectNotFound(name)
        return StorageUnavailable(f"S3 {name}: {error}", attempts=1)
