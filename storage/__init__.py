"""Persistence: the ClickHouse metrics store, the object store and the control database.

- :mod:`storage.clickhouse`: metrics in embedded chDB or a ClickHouse server (one URL);
- :mod:`storage.objects`: reference datasets, profiles and reports (folder or S3);
- :mod:`storage.db`, :mod:`storage.models`, :mod:`storage.db_migrations`: the control
  database (SQLite or PostgreSQL) and its Alembic migrations in ``migrations/``;
- :mod:`storage.errors`: the only exceptions this package lets out.

Nothing here reads the environment: callers pass URLs and limits from
:class:`driftline.settings.Settings`.
"""
