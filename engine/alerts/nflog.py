"""The notification log's decision: is a group's new state worth a message? (pure).

Alertmanager's ``needsUpdate``: send when an alert fires that was not in the last message,
when every alert of the group resolved, when (with ``send_resolved``) an alert resolved
that the last message did not report resolved, or when ``repeat_interval`` passed since the
last message while alerts still fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["LogEntry", "needs_update"]


@dataclass(frozen=True)
class LogEntry:
    """The last message sent for one (channel, group): its fingerprints and when."""

    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: datetime


def needs_update(
    entry: LogEntry | None,
    *,
    firing: frozenset[str],
    resolved: frozenset[str],
    send_resolved: bool,
    repeat_interval: timedelta,
    now: datetime,
) -> bool:
    """Whether to send a message for a group now firing ``firing`` and resolved ``resolved``.

    >>> from datetime import UTC
    >>> t = datetime(2025, 1, 1, tzinfo=UTC)
    >>> e = LogEntry(frozenset({"a"}), frozenset(), t)
    >>> kw = dict(send_resolved=True, repeat_interval=timedelta(hours=4))
    >>> needs_update(e, firing=frozenset({"a"}), resolved=frozenset(), now=t, **kw)
    False
    >>> needs_update(e, firing=frozenset({"a", "b"}), resolved=frozenset(), now=t, **kw)
    True
    >>> later = t + timedelta(hours=4)
    >>> needs_update(e, firing=frozenset({"a"}), resolved=frozenset(), now=later, **kw)
    True
    """
    if entry is None:
        return bool(firing) or (send_resolved and bool(resolved))
    if not firing <= entry.firing:
        return True
    if entry.firing and not firing:
        return True
    if send_resolved and not resolved <= entry.resolved:
        return True
    return bool(firing) and now - entry.sent_at >= repeat_interval
