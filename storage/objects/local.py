"""Object store in a local folder: the embedded default.

Layout: ``<root>/<organization>/<key>`` for the bytes, ``<root>/.meta/<organization>/<key>``
for a small JSON record (size, SHA-256, content type). An upload is written to a temporary
file inside ``<root>/.tmp`` and moved into place only when complete, so a reader never
sees half an object and a refused or failed upload leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from storage.errors import ObjectNotFound
from storage.objects.base import CHUNK_BYTES, StoredObject, check_key, copy_hashed, object_name

__all__ = ["LocalObjectStore"]


class LocalObjectStore:
    """Objects as files under ``root``; uploads above ``max_bytes`` are refused."""

    def __init__(self, root: Path, *, max_bytes: int = 1 << 30) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        for folder in (self.root, self.root / ".tmp", self.root / ".meta"):
            folder.mkdir(parents=True, exist_ok=True)

    def _paths(self, organization: str, key: str) -> tuple[Path, Path]:
        name = object_name(organization, key)
        return self.root / name, self.root / ".meta" / f"{name}.json"

    def put(
        self,
        organization: str,
        key: str,
        data: BinaryIO,
        *,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        """Store ``data`` atomically; see :class:`storage.objects.base.ObjectStore`."""
        path, meta = self._paths(organization, key)
        fd, tmp_name = tempfile.mkstemp(dir=self.root / ".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as target:
                size, sha256 = copy_hashed(data, target, max_bytes=self.max_bytes)
                target.flush()
                os.fsync(target.fileno())
            stored = StoredObject(organization, key, size, sha256, content_type)
            path.parent.mkdir(parents=True, exist_ok=True)
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta_tmp = tmp.with_suffix(".json")
            meta_tmp.write_text(
                json.dumps({"size": size, "sha256": sha256, "content_type": content_type})
            )
            os.replace(tmp, path)
            os.replace(meta_tmp, meta)
            return stored
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_suffix(".json").unlink(missing_ok=True)

    def stat(self, organization: str, key: str) -> StoredObject:
        """Size, hash and content type of an object."""
        path, meta = self._paths(organization, key)
        if not path.is_file() or not meta.is_file():
            raise ObjectNotFound(f"{organization}/{key}")
        record = json.loads(meta.read_text())
        return StoredObject(
            organization, key, int(record["size"]), str(record["sha256"]), record["content_type"]
        )

    def open(self, organization: str, key: str) -> Iterator[bytes]:
        """Yield the object's bytes in chunks of up to 1 MiB."""
        path, _meta = self._paths(organization, key)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, IsADirectoryError) as error:
            raise ObjectNotFound(f"{organization}/{key}") from error
        return self._chunks(handle)

    @staticmethod
    def _chunks(handle: BinaryIO) -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk

    def list(self, organization: str, prefix: str = "") -> list[str]:
        """Keys of the organization's objects starting with ``prefix``."""
        base = self.root / object_name(organization, "x").rsplit("/", 1)[0]
        if not base.is_dir():
            return []
        keys = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix))

    def delete(self, organization: str, key: str) -> None:
        """Remove an object and its record."""
        check_key(key)
        path, meta = self._paths(organization, key)
        path.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
