"""Inhibition: a firing source alert mutes target alerts that share the ``equal`` labels.

The default rule is "a critical alert mutes the warnings of the same deployment and rule
name": source ``severity=critical``, target ``severity=warning``, equal
``(deployment, alertname)``. An alert never inhibits itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.alerts.matchers import Matcher, matches_all

__all__ = ["DEFAULT_INHIBIT_RULES", "InhibitRule", "inhibited"]


@dataclass(frozen=True)
class InhibitRule:
    """Sources matching ``source`` mute targets matching ``target`` when ``equal`` agree."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


DEFAULT_INHIBIT_RULES = (
    InhibitRule(
        source=(Matcher(name="severity", value="critical"),),
        target=(Matcher(name="severity", value="warning"),),
        equal=("deployment", "alertname"),
    ),
)


def inhibited(
    labels: Mapping[str, str],
    firing: Iterable[Mapping[str, str]],
    rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
) -> bool:
    """Whether an alert with ``labels`` is muted by one of the ``firing`` alerts.

    >>> warn = {"severity": "warning", "deployment": "d", "alertname": "drift"}
    >>> crit = {"severity": "critical", "deployment": "d", "alertname": "drift"}
    >>> inhibited(warn, [crit]), inhibited(crit, [warn])
    (True, False)
    """
    sources = [dict(f) for f in firing]
    for rule in rules:
        if not matches_all(rule.target, labels):
            continue
        for source in sources:
            if source == dict(labels) or not matches_all(rule.source, source):
                continue
            if all(source.get(n, "") == labels.get(n, "") for n in rule.equal):
                return True
    return False
