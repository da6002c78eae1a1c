"""Alert identity: a fingerprint of the rule and the alert's labels."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

__all__ = ["fingerprint"]


def fingerprint(rule_id: str, labels: Mapping[str, str]) -> str:
    """16 hex digits of SHA-256 over the rule id and the labels sorted by name.

    Label order does not matter; any change of a name or value gives another alert.

    >>> fingerprint("r1", {"b": "2", "a": "1"}) == fingerprint("r1", {"a": "1", "b": "2"})
    True
    >>> fingerprint("r1", {"a": "1"}) == fingerprint("r2", {"a": "1"})
    False
    """
    digest = hashlib.sha256(rule_id.encode())
    for name in sorted(labels):
        digest.update(b"\x00" + name.encode() + b"\x01" + labels[name].encode())
    return digest.hexdigest()[:16]
