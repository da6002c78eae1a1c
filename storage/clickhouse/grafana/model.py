"""Dashboards as data (:class:`Dashboard`, :class:`Panel`, :class:`Variable`) and their JSON.

The JSON is what Grafana's file provisioning loads (``deploy/grafana/dashboards``): every
panel and variable uses the provisioned ClickHouse datasource (:data:`DATASOURCE`), SQL
editor mode, and a query format the plugin understands (0 time series, 1 table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from storage.clickhouse.grafana.sql import GatedQuery

__all__ = [
    "DATASOURCE",
    "PLUGIN_ID",
    "SCHEMA_VERSION",
    "Dashboard",
    "Panel",
    "PanelKind",
    "Variable",
]

PLUGIN_ID = "grafana-clickhouse-datasource"
DATASOURCE: dict[str, str] = {"type": PLUGIN_ID, "uid": "driftline-clickhouse"}
SCHEMA_VERSION = 41  # Grafana 12.x dashboards
PanelKind = Literal["timeseries", "state-timeline", "barchart", "table", "stat"]
TIME_SERIES_KINDS: frozenset[str] = frozenset({"timeseries", "state-timeline"})
_SIZES: dict[str, tuple[int, int]] = {  # width (of 24), height
    "stat": (6, 4),
    "timeseries": (12, 8),
    "state-timeline": (12, 8),
    "barchart": (12, 8),
    "table": (24, 8),
}


@dataclass(frozen=True)
class Panel:
    """One panel: its kind, its SQL (plain or gated over roll-ups) and its result columns.

    ``columns`` names the columns the SQL returns, in order; time-series kinds return the
    bucket start as ``time`` first, then label columns (strings), then numeric values, in
    ascending time (the plugin turns this long frame into one series per label).
    """

    title: str
    kind: PanelKind
    query: GatedQuery | str
    columns: tuple[str, ...]
    unit: str = ""
    description: str = ""

    @property
    def sql(self) -> str:
        """The panel's SQL template (macros and variables not yet expanded)."""
        return self.query if isinstance(self.query, str) else self.query.sql()

    @property
    def time_series(self) -> bool:
        """Whether the panel asks the plugin for time series (format 0)."""
        return self.kind in TIME_SERIES_KINDS


@dataclass(frozen=True)
class Variable:
    """A query variable: its values are the first column of ``sql``."""

    name: str
    label: str
    sql: str
    multi: bool = False

    def render(self) -> dict[str, Any]:
        """The variable as Grafana templating JSON."""
        current: dict[str, Any] = (
            {"selected": True, "text": ["All"], "value": ["$__all"]} if self.multi else {}
        )
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": DATASOURCE,
            "definition": self.sql,
            "query": self.sql,
            "refresh": 2,  # on time range change
            "multi": self.multi,
            "includeAll": self.multi,
            "current": current,
            "options": [],
            "sort": 1,
            "hide": 0,
            "skipUrlSync": False,
        }


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: uid, title, variables and panels, laid out in rows of 24 columns."""

    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]
    time_from: str = "now-24h"

    def render(self) -> dict[str, Any]:
        """The dashboard as Grafana JSON (for file provisioning)."""
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["driftline"],
            "timezone": "utc",
            "editable": True,
            "graphTooltip": 1,
            "refresh": "1m",
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "time": {"from": self.time_from, "to": "now"},
            "links": [
                {
                    "type": "dashboards",
                    "title": "Driftline",
                    "tags": ["driftline"],
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                }
            ],
            "annotations": {"list": []},
            "templating": {"list": [variable.render() for variable in self.variables]},
            "panels": self._render_panels(),
        }

    def _render_panels(self) -> list[dict[str, Any]]:
        rendered: list[dict[str, Any]] = []
        x = y = row_height = 0
        for number, panel in enumerate(self.panels, start=1):
            width, height = _SIZES[panel.kind]
            if x + width > 24:
                x, y, row_height = 0, y + row_height, 0
            rendered.append(_render_panel(panel, number, {"h": height, "w": width, "x": x, "y": y}))
            x += width
            row_height = max(row_height, height)
        return rendered


def _render_panel(panel: Panel, number: int, grid: dict[str, int]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    if panel.kind == "timeseries":
        options = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["max"]}}
        custom = {"drawStyle": "line", "lineWidth": 1, "spanNulls": False}
    elif panel.kind == "stat":
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    elif panel.kind == "table":
        options = {"showHeader": True, "cellHeight": "sm"}
    return {
        "id": number,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "fieldConfig": {"defaults": {"unit": panel.unit, "custom": custom}, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "editorType": "sql",
                "format": 0 if panel.time_series else 1,
                "queryType": "timeSeries" if panel.time_series else "table",
                "rawSql": panel.sql,
            }
        ],
    }
