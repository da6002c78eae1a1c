"""The object store the control plane writes to, built from the settings."""

from __future__ import annotations

from driftline.settings import ObjectStoreKind, Settings
from storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore

__all__ = ["object_store"]


def object_store(settings: Settings) -> ObjectStore:
    """A local folder or S3 store as ``settings`` say."""
    if settings.object_store is ObjectStoreKind.S3:
        from minio import Minio

        client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
        return S3ObjectStore(client, settings.s3_bucket, max_bytes=settings.max_upload_bytes)
    return LocalObjectStore(settings.local_objects_dir, max_bytes=settings.max_upload_bytes)
