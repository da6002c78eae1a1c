"""Columnar, idempotent batch writes into the metrics tables.

A batch is a mapping of column name -> numpy array / Arrow array (or a list for the
``Array`` and ``Map`` columns), all of one length, for one organization. It is converted to
one Arrow table (numeric columns without copying) and sent in one insert; no Python loop
runs per row.

Idempotency: every batch carries a ``batch_id`` chosen by the caller that names its
content (for example ``"<deployment>/<window start>/<window end>"``): the insert uses the
deduplication token ``<table>/<organization>/<batch_id>``, so sending the same batch again
after a timeout or a crash is acknowledged without writing it twice, in the table and in
the roll-ups. ClickHouse remembers the last ``dedup_window`` tokens per table (10 000 by
default, see the migrations): a retry has to come within that many inserts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa

from storage.clickhouse.client import MetricsClient
from storage.clickhouse.tables import TABLES, MetricsTable, TableSpec
from storage.errors import StorageInputError

__all__ = ["ColumnLike", "build_batch", "write_batch"]

ColumnLike: TypeAlias = "np.ndarray[Any, Any] | pa.Array | pa.ChunkedArray | list[Any]"


def _column(name: str, values: ColumnLike, dtype: pa.DataType, *, nullable: bool) -> pa.Array:
    try:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if isinstance(values, pa.Array):
            return values.cast(dtype)
        if isinstance(values, np.ndarray) and pa.types.is_timestamp(dtype):
            if not np.issubdtype(values.dtype, np.datetime64):
                raise StorageInputError(f"{name}: expected datetime64 values, got {values.dtype}")
            return pa.array(values.astype("datetime64[ms]"), type=dtype)
        return pa.array(values, type=dtype, from_pandas=nullable)
    except StorageInputError:
        raise
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise StorageInputError(f"{name}: cannot convert to {dtype}: {error}") from error


def build_batch(
    spec: TableSpec, *, organization: str, columns: Mapping[str, ColumnLike]
) -> pa.Table:
    """Check and convert ``columns`` into the Arrow table inserted into ``spec.table``.

    Raises :class:`StorageInputError` for an empty organization, an unknown or missing
    column, ragged lengths, or values that do not fit the column's type (negative counts,
    fractional integers, non-time values in a time column).
    """
    if not isinstance(organization, str) or not organization:
        raise StorageInputError("organization must be a non-empty string")
    known = spec.all_columns
    unknown = sorted(set(columns) - set(known))
    if unknown:
        raise StorageInputError(f"{spec.table}: unknown column(s) {unknown}")
    missing = sorted(set(spec.columns) - set(columns))
    if missing:
        raise StorageInputError(f"{spec.table}: missing column(s) {missing}")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise StorageInputError(f"{spec.table}: columns differ in length {lengths}")
    rows = next(iter(lengths.values()))
    arrays: dict[str, pa.Array] = {
        "organization": pa.nulls(rows, pa.string()).fill_null(organization)
    }
    for name, dtype in known.items():
        nullable = name in spec.nullable
        if name in columns:
            arrays[name] = _column(name, columns[name], dtype, nullable=nullable)
        else:
            default = spec.defaults[name]
            if default is None:
                arrays[name] = pa.nulls(rows, dtype)
            elif isinstance(default, list):
                # an empty Array / Map per row: offsets only, no per-row Python objects
                arrays[name] = pa.nulls(rows, dtype).fill_null(pa.scalar(default, type=dtype))
            else:
                arrays[name] = pa.nulls(rows, dtype).fill_null(default)
    return pa.table(arrays)


def write_batch(
    client: MetricsClient,
    table: MetricsTable,
    *,
    organization: str,
    batch_id: str,
    columns: Mapping[str, ColumnLike],
) -> int:
    """Insert one batch into ``table`` for ``organization``; return the rows sent.

    Idempotent under ``batch_id`` (see the module docstring). An empty batch writes
    nothing. Transient store failures are retried, then raised as
    :class:`~storage.errors.StorageUnavailable`: the caller keeps the batch and retries
    later with the same ``batch_id``.
    """
    if not batch_id:
        raise StorageInputError("batch_id must be a non-empty string")
    data = build_batch(TABLES[table], organization=organization, columns=columns)
    if data.num_rows == 0:
        return 0
    client.insert_arrow(str(table), data, dedup_token=f"{table}/{organization}/{batch_id}")
    return int(data.num_rows)
