"""The object store: a local folder (embedded default) or any S3 API, one interface."""

from storage.objects.base import ObjectStore, StoredObject
from storage.objects.local import LocalObjectStore
from storage.objects.s3 import S3ObjectStore

__all__ = ["LocalObjectStore", "ObjectStore", "S3ObjectStore", "StoredObject"]
