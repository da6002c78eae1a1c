"""Label matchers, as Alertmanager writes them: ``name op value`` with = != =~ !~."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Matcher", "matches_all"]

MatchOp = Literal["=", "!=", "=~", "!~"]


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class Matcher(BaseModel):
    """One condition on a label; a missing label reads as the empty string.

    Regular expressions are anchored (the whole value must match), as in Alertmanager.

    >>> Matcher(name="severity", op="=~", value="crit.*").matches({"severity": "critical"})
    True
    >>> Matcher(name="team", op="!=", value="ml").matches({})
    True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    op: MatchOp = "="
    value: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _regex_compiles(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                _compiled(f"(?:{self.value})")
            except re.error as error:
                raise ValueError(f"invalid regular expression {self.value!r}: {error}") from error
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = _compiled(f"(?:{self.value})").fullmatch(actual) is not None
        return found if self.op == "=~" else not found


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches ``labels`` (true for no matchers)."""
    return all(m.matches(labels) for m in matchers)
