"""Secrets encrypted at rest: notification channels' signing keys, chat URLs, SMTP passwords.

Each secret value of a channel is stored as ``fernet:<token>``: the value's JSON encrypted
with Fernet (AES-128-CBC with a random IV, authenticated by HMAC-SHA256; the token carries
its creation time). Keys are Fernet keys (32 random bytes, URL-safe base64, 44 characters,
``Fernet.generate_key()``), given as a comma-separated list: the first encrypts, every one
decrypts, so a key is rotated by putting the new one first, running :meth:`SecretBox.reseal`
over every channel (``driftline admin rotate-secrets-key``) and then dropping the old one.

A value without the ``fernet:`` prefix was written before encryption existed: it is read as
the plaintext it is and sealed by the next write or reseal. Empty values (no secret) are
kept as they are, so the set secret fields stay visible without a key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from storage.errors import StorageError

__all__ = ["KEY_FILE", "PREFIX", "SecretBox", "SecretsError", "kept_key", "local_key"]

PREFIX = "fernet:"
KEY_FILE = "secrets-key"


class SecretsError(StorageError):
    """A key is malformed, or a stored secret does not open with any configured key."""


class SecretBox:
    """Seals and opens the secret values of one mapping (a channel's ``secrets``)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretsError("no key to encrypt secrets with")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError:
            raise SecretsError(
                "a secrets key must be 32 random bytes in URL-safe base64 (44 characters), "
                "as made by cryptography's Fernet.generate_key()"
            ) from None

    @classmethod
    def from_text(cls, text: str) -> SecretBox:
        """A box of the comma-separated keys in ``text`` (the first encrypts)."""
        return cls([key.strip() for key in text.split(",") if key.strip()])

    def seal(self, secrets: Mapping[str, Any]) -> dict[str, Any]:
        """``secrets`` with every non-empty value encrypted under the first key."""
        return {name: self._seal(value) for name, value in secrets.items()}

    def open(self, secrets: Mapping[str, Any]) -> dict[str, Any]:
        """``secrets`` decrypted (plaintext values pass); :class:`SecretsError` without the key."""
        return {name: self._open(name, value) for name, value in secrets.items()}

    def reseal(self, secrets: Mapping[str, Any]) -> dict[str, Any]:
        """``secrets`` encrypted again under the first key (plaintext ones for the first time)."""
        return self.seal(self.open(secrets))

    def seal_value(self, value: Any) -> Any:
        """One value encrypted under the first key (empty values stay as they are)."""
        return self._seal(value)

    def open_value(self, name: str, value: Any) -> Any:
        """One value decrypted; ``name`` labels the error when no key opens it."""
        return self._open(name, value)

    def _seal(self, value: Any) -> Any:
        if not value:
            return value
        token = self._fernet.encrypt(json.dumps(value).encode())
        return PREFIX + token.decode()

    def _open(self, name: str, value: Any) -> Any:
        if not (isinstance(value, str) and value.startswith(PREFIX)):
            return value
        try:
            return json.loads(self._fernet.decrypt(value.removeprefix(PREFIX).encode()))
        except InvalidToken:
            raise SecretsError(
                f"the secret {name!r} does not open with any configured secrets key"
            ) from None


def kept_key(path: Path, make: Callable[[], str]) -> str:
    """The key kept in the file ``path``, made by ``make`` and written the first time.

    The file is created with mode 0600: readable by its owner only.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = make()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


def local_key(data_dir: Path) -> str:
    """The secrets key kept in ``data_dir`` (:data:`KEY_FILE`, made once, mode 0600).

    For development and the embedded default (``driftline up``) only: a server deployment
    sets ``DRIFTLINE_SECRETS_KEY``. Lose the file and the stored channel secrets are lost.
    """
    return kept_key(data_dir / KEY_FILE, lambda: Fernet.generate_key().decode())
