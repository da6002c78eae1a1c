"""Migration 0003: minute roll-ups, the finest level of minute -> hour -> day.

Windows shorter than a minute (or many deployments writing every few seconds) make the raw
tables long for panels of a few hours; ``*_rollup_minute`` holds the same aggregate states
as the hourly roll-up (see :mod:`m0002_rollups`) per minute, fed on insert from the raw
tables. Readers aggregate again with ``GROUP BY``, as for every roll-up.
"""

from __future__ import annotations

from storage.clickhouse.migrations.base import Migration
from storage.clickhouse.migrations.m0002_rollups import (
    _DRIFT_COLUMNS,
    _DRIFT_KEYS,
    _WINDOW_COLUMNS,
    _rollup_table,
    drift_from_raw,
    windows_from_raw,
)

DRIFT_MINUTE = _rollup_table("drift_rollup_minute", "minute", _DRIFT_KEYS, _DRIFT_COLUMNS)
WINDOW_MINUTE = _rollup_table("window_rollup_minute", "minute", "", _WINDOW_COLUMNS)

DRIFT_MINUTE_MV = drift_from_raw("minute", "toStartOfMinute")
WINDOW_MINUTE_MV = windows_from_raw("minute", "toStartOfMinute")

MIGRATION = Migration(
    version=3,
    name="minute_rollups",
    forwards=(DRIFT_MINUTE, WINDOW_MINUTE, DRIFT_MINUTE_MV, WINDOW_MINUTE_MV),
    backwards=tuple(
        f"DROP TABLE IF EXISTS {name}"
        for name in (
            "window_rollup_minute_mv",
            "drift_rollup_minute_mv",
            "window_rollup_minute",
            "drift_rollup_minute",
        )
    ),
)
