"""Password hashing with Argon2id (pwdlib), and a constant-time answer for unknown accounts."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from driftline.settings import Settings

__all__ = ["PasswordHasher"]


class PasswordHasher:
    """Hashes and checks passwords with Argon2id at the costs named in the settings."""

    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hash = PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))
        self._dummy = self._hash.hash("driftline-dummy-password")

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordHasher:
        """The hasher configured by ``argon2_time_cost`` and ``argon2_memory_kib``."""
        return cls(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)

    def hash(self, password: str) -> str:
        """The Argon2id hash of ``password`` (salted, self-describing)."""
        return self._hash.hash(password)

    def verify(self, password: str, password_hash: str | None) -> bool:
        """Whether ``password`` matches; with no hash, spend the same time and say no."""
        if password_hash is None:
            self._hash.verify(password, self._dummy)
            return False
        return self._hash.verify(password, password_hash)
