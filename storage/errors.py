"""Exceptions raised by ``storage``.

Callers catch these, never the driver's: :class:`StorageUnavailable` means "the store did
not answer, even after retries; keep your data and try again later"; :class:`StorageQueryError`
means the request itself is wrong and retrying will not help.
"""

from __future__ import annotations

__all__ = [
    "InvalidObjectKey",
    "MigrationError",
    "ObjectNotFound",
    "ObjectTooLarge",
    "StorageError",
    "StorageInputError",
    "StorageQueryError",
    "StorageUnavailable",
]


class StorageError(Exception):
    """Base class of every error raised by ``storage``."""


class StorageUnavailable(StorageError):  # noqa: N818 - reads as a state, like TimeoutError
    """The store could not be reached or answered with a transient error, retries exhausted.

    Nothing was acknowledged: the caller keeps what it tried to write and retries later.
    ``attempts`` counts the tries made.
    """

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(f"{message} (after {attempts} attempt(s))")
        self.attempts = attempts


class StorageQueryError(StorageError):
    """The store rejected the request (bad SQL, unknown table, wrong types); not retried.

    ``code`` is the ClickHouse error code when known.
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class StorageInputError(StorageError, ValueError):
    """The caller's data cannot be stored: missing columns, ragged lengths, bad names."""


class MigrationError(StorageError):
    """A schema migration cannot be applied or reverted."""


class ObjectNotFound(StorageError, KeyError):  # noqa: N818 - mirrors KeyError
    """No object under that key for that organization."""


class ObjectTooLarge(StorageError, ValueError):  # noqa: N818 - reads as a state
    """The upload is larger than the configured limit; nothing was kept."""


class InvalidObjectKey(StorageError, ValueError):  # noqa: N818 - reads as a state
    """An object key or organization id that could escape its prefix (``..``, ``/`` ...)."""
