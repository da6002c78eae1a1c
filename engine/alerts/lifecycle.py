"""The life of one alert series: inactive -> pending -> firing -> resolved, in event time.

:func:`step` is pure: the previous :class:`Series` and one window's sample in, the next
series and the transition (if any) out. All times are epoch milliseconds of event time.

- Active window: the streak grows (consecutive active windows); the run started at the
  first active window's start (``active_since_ms``). Pending turns firing once the streak
  reaches ``for_windows`` *and* ``end - active_since >= for_ms``.
- Inactive window: pending goes back to inactive; firing resolves once
  ``end - last_active >= keep_firing_for_ms`` (0: at the first inactive window), otherwise
  it keeps firing (hysteresis).
- A window that ends at or before the last evaluated one changes nothing (replays).

An inactive window leaves an inactive or resolved series as it was but for ``value`` and
``evaluated_at_ms`` (its streak is already 0): the evaluator does not rewrite such series.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["Series", "State", "Timing", "step"]

State = Literal["inactive", "pending", "firing", "resolved"]


@dataclass(frozen=True)
class Timing:
    """``for`` as windows and/or milliseconds, and ``keep_firing_for`` in milliseconds."""

    for_windows: int = 1
    for_ms: int = 0
    keep_firing_for_ms: int = 0


@dataclass(frozen=True)
class Series:
    """The current state of one series, as kept in the control database."""

    state: State = "inactive"
    value: float = 0.0
    streak: int = 0
    active_since_ms: int | None = None
    last_active_ms: int | None = None
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    evaluated_at_ms: int = -1


def step(
    previous: Series | None,
    *,
    active: bool,
    value: float,
    start_ms: int,
    end_ms: int,
    timing: Timing,
) -> tuple[Series, State | None]:
    """The series after one window ``[start_ms, end_ms)`` and the state it moved to, if any.

    >>> t = Timing(for_windows=2)
    >>> s, moved = step(None, active=True, value=0.3, start_ms=0, end_ms=60, timing=t)
    >>> moved, s.streak
    ('pending', 1)
    >>> s, moved = step(s, active=True, value=0.4, start_ms=60, end_ms=120, timing=t)
    >>> moved, s.fired_at_ms
    ('firing', 120)
    >>> step(s, active=False, value=0.0, start_ms=120, end_ms=180, timing=t)[1]
    'resolved'
    """
    prev = previous or Series()
    if end_ms <= prev.evaluated_at_ms:
        return prev, None
    seen = replace(prev, value=value, evaluated_at_ms=end_ms)
    if active:
        running = prev.state in ("pending", "firing") and prev.streak > 0
        streak = prev.streak + 1 if running else 1
        since = prev.active_since_ms if running and prev.active_since_ms is not None else start_ms
        seen = replace(seen, streak=streak, active_since_ms=since, last_active_ms=end_ms)
        if prev.state == "firing":
            return seen, None
        if streak >= timing.for_windows and end_ms - since >= timing.for_ms:
            return replace(seen, state="firing", fired_at_ms=end_ms, resolved_at_ms=None), "firing"
        moved: State | None = None if prev.state == "pending" else "pending"
        return replace(seen, state="pending"), moved
    seen = replace(seen, streak=0)
    if prev.state == "pending":
        return replace(seen, state="inactive", active_since_ms=None), "inactive"
    if prev.state == "firing":
        last = prev.last_active_ms if prev.last_active_ms is not None else end_ms
        if end_ms - last >= timing.keep_firing_for_ms:
            resolved = replace(seen, state="resolved", resolved_at_ms=end_ms, active_since_ms=None)
            return resolved, "resolved"
    return seen, None
