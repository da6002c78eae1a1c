"""Grafana dashboards over the metrics store, for the ClickHouse datasource plugin.

- :mod:`storage.clickhouse.grafana.sql`: panel SQL over raw windows or the roll-ups;
- :mod:`storage.clickhouse.grafana.model`: dashboards as data and their JSON;
- :mod:`storage.clickhouse.grafana.dashboards`: the dashboards themselves;
- :mod:`storage.clickhouse.grafana.macros`: the plugin's macro expansion, for tests and
  benchmarks that run a panel's SQL outside Grafana.
"""

from storage.clickhouse.grafana.dashboards import DASHBOARDS, render_all, write_all
from storage.clickhouse.grafana.macros import MacroError, QueryContext, expand

__all__ = ["DASHBOARDS", "MacroError", "QueryContext", "expand", "render_all", "write_all"]
