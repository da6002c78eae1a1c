"""The routing tree (Alertmanager's dispatch/route): labels -> channels, grouping and timings.

A route matches an alert when all its matchers do (the root matches everything). Its
children are tried in order: the first matching child takes the alert, unless that child
has ``continue`` set, in which case the next siblings are tried too. When no child takes
the alert, the route itself does. Children inherit ``channels``, ``group_by`` and the
timings (milliseconds) they leave unset. ``group_by`` of ``["..."]`` groups by every label.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from engine.alerts.matchers import Matcher, matches_all

__all__ = ["DEFAULT_TIMINGS", "Match", "Route", "group_key", "match"]

DEFAULT_TIMINGS = (30_000, 300_000, 14_400_000)
"""group_wait 30 s, group_interval 5 min, repeat_interval 4 h (Alertmanager's defaults)."""


class Route(BaseModel):
    """One node of the tree."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    matchers: tuple[Matcher, ...] = ()
    channels: tuple[str, ...] | None = None
    continue_: bool = Field(default=False, alias="continue")
    group_by: tuple[str, ...] | None = None
    # at most a year: a stored interval is a BIGINT, and longer ones mean nothing here
    group_wait_ms: int | None = Field(default=None, ge=0, le=366 * 86_400_000)
    group_interval_ms: int | None = Field(default=None, ge=1, le=366 * 86_400_000)
    repeat_interval_ms: int | None = Field(default=None, ge=1, le=366 * 86_400_000)
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class Match:
    """Where an alert goes: the route's path, channels, grouping and timings (ms)."""

    path: str
    channels: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait_ms: int
    group_interval_ms: int
    repeat_interval_ms: int


def _resolve(route: Route, parent: Match, path: str) -> Match:
    return Match(
        path=path,
        channels=parent.channels if route.channels is None else route.channels,
        group_by=parent.group_by if route.group_by is None else route.group_by,
        group_wait_ms=_pick(route.group_wait_ms, parent.group_wait_ms),
        group_interval_ms=_pick(route.group_interval_ms, parent.group_interval_ms),
        repeat_interval_ms=_pick(route.repeat_interval_ms, parent.repeat_interval_ms),
    )


def _pick(own: int | None, inherited: int) -> int:
    return inherited if own is None else own


def _walk(route: Route, labels: Mapping[str, str], here: Match) -> list[Match]:
    found: list[Match] = []
    for i, child in enumerate(route.routes):
        if not matches_all(child.matchers, labels):
            continue
        found += _walk(child, labels, _resolve(child, here, f"{here.path}/{i}"))
        if not child.continue_:
            break
    return found or [here]


def match(root: Route, labels: Mapping[str, str]) -> list[Match]:
    """Every route that takes an alert with ``labels``, in tree order.

    >>> tree = Route(channels=("ops",), routes=(
    ...     Route(matchers=(Matcher(name="severity", value="critical"),), channels=("pager",),
    ...           continue_=True),
    ...     Route(matchers=(Matcher(name="team", value="ml"),), channels=("ml",)),
    ... ))
    >>> [m.channels for m in match(tree, {"severity": "critical", "team": "ml"})]
    [('pager',), ('ml',)]
    >>> [m.channels for m in match(tree, {"team": "web"})]
    [('ops',)]
    """
    wait, interval, repeat = DEFAULT_TIMINGS
    base = Match("root", (), ("alertname",), wait, interval, repeat)
    return _walk(root, labels, _resolve(root, base, "root"))


def group_key(found: Match, labels: Mapping[str, str]) -> str:
    """The group an alert joins under ``found``: the route path and its group-by values."""
    names = sorted(labels) if "..." in found.group_by else sorted(found.group_by)
    values = {name: labels.get(name, "") for name in names}
    return f"{found.path}:{json.dumps(values, sort_keys=True, separators=(',', ':'))}"
