"""Panel SQL that reads raw windows on short ranges and the roll-ups on long ones.

Grafana cannot pick a table by the time range, so a :class:`GatedQuery` is one SQL
statement holding three ``UNION ALL`` branches (raw table, hourly roll-up, daily roll-up),
each guarded by a condition on the plugin's macros that is constant once they are expanded.
ClickHouse folds the constant guards and reads only the branch whose guard is true:

- raw windows when ``$__interval_s < 3600`` and the range is at most 3 days
  (:data:`RAW_MAX_RANGE_SECONDS`): buckets of ``$__timeInterval(window_start)``;
- the daily roll-up when ``$__interval_s >= 86400``: buckets of the interval rounded up
  to whole days;
- the hourly roll-up otherwise: buckets of the interval rounded up to whole hours.

A bucket is labelled by its start (UTC). A roll-up bucket starts at the hour (day) of the
range's start, so the first bucket can hold windows from before ``$__fromTime``: at most
one hour (day) of them, on ranges where a bucket is an hour (day) or more anyway.

Every branch filters on the organization variable, ``${organization:sqlstring}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DRIFT",
    "LEVELS",
    "ORG_FILTER",
    "RAW_MAX_RANGE_SECONDS",
    "WINDOWS",
    "GatedQuery",
    "Level",
    "Source",
]

Level = Literal["raw", "hour", "day"]
LEVELS: tuple[Level, ...] = ("raw", "hour", "day")

RAW_MAX_RANGE_SECONDS = 3 * 86_400
ORG_FILTER = "organization = ${organization:sqlstring}"

_RAW_GATE = f"($__interval_s < 3600 AND $__toTime - $__fromTime <= {RAW_MAX_RANGE_SECONDS})"
_DAY_GATE = "($__interval_s >= 86400)"
_GATES: dict[Level, str] = {
    "raw": _RAW_GATE,
    "hour": f"NOT {_RAW_GATE} AND NOT {_DAY_GATE}",
    "day": _DAY_GATE,
}
_ROLLUP_TIME = {
    "hour": (
        "hour >= toStartOfHour($__fromTime) AND hour <= $__toTime",
        "toStartOfInterval(hour, toIntervalSecond(intDiv($__interval_s + 3599, 3600) * 3600))",
    ),
    "day": (
        "day >= toStartOfDay($__fromTime) AND day <= $__toTime",
        "toStartOfInterval(day, toIntervalSecond(intDiv($__interval_s + 86399, 86400) * 86400))",
    ),
}
_PLACEHOLDER = re.compile(r"@(\w+)")


@dataclass(frozen=True)
class Source:
    """A raw table and its roll-ups: ``measures`` maps a name to (raw, roll-up) SQL.

    A measure aggregates rows of its level: ``sum(event_count)`` over raw windows is
    ``sum(events)`` over roll-up rows.
    """

    raw_table: str
    raw_time: str
    rollup_prefix: str
    measures: Mapping[str, tuple[str, str]]

    def table(self, level: Level) -> str:
        """The table read at ``level``."""
        return self.raw_table if level == "raw" else f"{self.rollup_prefix}_{level}"

    def time_filter(self, level: Level) -> str:
        """The time-range condition at ``level``."""
        if level == "raw":
            return f"$__timeFilter({self.raw_time})"
        return _ROLLUP_TIME[level][0]

    def bucket(self, level: Level) -> str:
        """The bucket-start expression at ``level``."""
        if level == "raw":
            return f"$__timeInterval({self.raw_time})"
        return _ROLLUP_TIME[level][1]


WINDOWS = Source(
    "window_aggregates",
    "window_start",
    "window_rollup",
    {
        "windows": ("toUInt64(count())", "sum(windows)"),
        "events": ("sum(event_count)", "sum(events)"),
        "errors": ("sum(error_count)", "sum(errors)"),
        "late": ("sum(late_count)", "sum(late)"),
        "latency_p50": (
            "sum(latency_p50_ms * event_count) / sum(event_count)",
            "sum(latency_p50_weighted) / sum(r.events)",
        ),
        "latency_p99_max": ("max(latency_p99_ms)", "max(latency_p99_max)"),
        "prediction_mean": (
            "sum(prediction_mean * event_count) / sum(event_count)",
            "sum(prediction_mean_weighted) / sum(r.events)",
        ),
    },
)

DRIFT = Source(
    "drift_results",
    "window_start",
    "drift_rollup",
    {
        "windows": ("toUInt64(count())", "sum(windows)"),
        "drifted_windows": ("toUInt64(countIf(drifted))", "sum(drifted_windows)"),
        "value_avg": ("avg(value)", "sum(value_sum) / sum(r.windows)"),
        "value_max": ("max(value)", "max(value_max)"),
        "p_value_min": ("min(p_value)", "min(p_value_min)"),
        # features with at least one drifted window in the bucket
        "drifted_features": (
            "uniqExactIf(feature, drifted)",
            "uniqExactIf(feature, drifted_windows > 0)",
        ),
    },
)


@dataclass(frozen=True)
class GatedQuery:
    """One panel query over a :class:`Source`, read at the level the range calls for.

    ``select``, ``where``, ``group_by`` and ``order_by`` are SQL in which ``@bucket``
    stands for the bucket start and ``@<measure>`` for a measure of the source; ``where``
    is added to the organization and time filters.
    """

    source: Source
    select: str
    group_by: str
    order_by: str
    where: str = ""
    limit: int | None = None
    levels: tuple[Level, ...] = field(default=LEVELS)

    def branch(self, level: Level) -> str:
        """The SELECT of one level, without its guard."""
        exprs = {"bucket": self.source.bucket(level)} | {
            name: pair[0 if level == "raw" else 1] for name, pair in self.source.measures.items()
        }

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: exprs[m.group(1)], text)

        alias = "" if level == "raw" else " AS r"  # roll-up measures name columns as r.x
        where = " AND ".join(
            part for part in (ORG_FILTER, self.source.time_filter(level), fill(self.where)) if part
        )
        return (
            f"SELECT {fill(self.select)}\nFROM {self.source.table(level)}{alias}\n"
            f"WHERE {where}\nGROUP BY {fill(self.group_by)}"
        )

    def sql(self, *, force: Level | None = None) -> str:
        """The panel's SQL; ``force`` reads one level whatever the range (benchmarks)."""
        if force is not None:
            body = self.branch(force)
        else:
            body = "\nUNION ALL\n".join(
                self.branch(level).replace("\nWHERE ", f"\nWHERE {_GATES[level]} AND ", 1)
                for level in self.levels
            )
        limit = f"\nLIMIT {int(self.limit)}" if self.limit is not None else ""
        return f"SELECT * FROM (\n{body}\n)\nORDER BY {self.order_by}{limit}"
