"""Replay a file of logged predictions through the pipeline: backtesting a monitor.

Reads Parquet, CSV or NDJSON; builds the reference profile from a reference file (or takes
one fitted before, the JSON written by ``driftline profile build``); streams the events
through the same :class:`~engine.pipeline.Pipeline` as live traffic, in event-time order
and in chunks, building columns straight from the file (no JSON round trip). Without
explicit features, every reference column except the id, timestamp, prediction and label
columns is a feature, numeric or categorical by dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from detectors import ReferenceProfile
from engine.decode import Decoded, PredictionColumns
from engine.monitor import Monitor, PerformanceSpec, WindowSpec, parse_duration_ms
from engine.pipeline import Pipeline

CHUNK_ROWS = 20_000


def read_table(path: str | Path) -> pl.DataFrame:
    """A Parquet, CSV or NDJSON file as a DataFrame (by extension)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pl.read_parquet(path)
    if suffix == ".csv":
        return pl.read_csv(path, try_parse_dates=False)
    if suffix in (".ndjson", ".jsonl", ".json"):
        return pl.read_ndjson(path)
    raise ValueError(f"{path}: unknown format (use .parquet, .csv, .ndjson or .jsonl)")


@dataclass(frozen=True)
class ReplayColumns:
    """Which columns of the events file play which part."""

    timestamp: str | None = "timestamp"
    id: str | None = "id"
    prediction: str | None = None
    label: str | None = None
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] | None = None


def window_spec(text: str) -> WindowSpec:
    """``"5000"`` -> a count window of 5000 events; ``"1h"`` -> a tumbling hour."""
    if text.strip().isdigit():
        return WindowSpec(kind="count", size=int(text))
    parse_duration_ms(text)
    return WindowSpec(kind="tumbling", size=text)


_PROFILE_KEYS = frozenset({"version", "numeric", "categorical", "coarse", "fine"})


def load_reference(path: str | Path) -> pl.DataFrame | ReferenceProfile:
    """A reference: data (Parquet, CSV, NDJSON) or a fitted profile (its JSON, one object)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:  # more than one line: NDJSON data
            data = None
        if isinstance(data, dict) and data.keys() >= _PROFILE_KEYS:
            return ReferenceProfile.from_dict(data)
    return read_table(path)


def reference_features(
    reference: pl.DataFrame, columns: ReplayColumns
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (numeric, categorical) features of a reference dataset.

    The chosen features, or every column except the id, timestamp, prediction and label
    columns; categorical ones are those named in ``columns.categorical``, else those of a
    non-numeric dtype (strings, booleans).
    """
    skip = {columns.id, columns.timestamp, columns.prediction, columns.label} - {None}
    features = columns.features or tuple(c for c in reference.columns if c not in skip)
    missing = [f for f in features if f not in reference.columns]
    if missing:
        raise ValueError(f"features not in the reference: {missing}")
    if columns.categorical is not None:
        categorical = tuple(f for f in features if f in columns.categorical)
    else:
        categorical = tuple(f for f in features if not reference.schema[f].is_numeric())
    numeric = tuple(f for f in features if f not in categorical)
    return numeric, categorical


def fit_reference(reference: pl.DataFrame, columns: ReplayColumns) -> ReferenceProfile:
    """The reference profile of ``reference`` over its features (:func:`reference_features`)."""
    numeric, categorical = reference_features(reference, columns)
    return ReferenceProfile.fit(reference, numeric=numeric, categorical=categorical)


def build_monitor(
    reference: pl.DataFrame | ReferenceProfile,
    columns: ReplayColumns,
    *,
    window: WindowSpec,
    deployment: str = "replay",
    min_samples: int = 100,
    labels: pl.Series | None = None,
) -> Monitor:
    """A monitor over the reference's features with Driftline's default drift policy.

    ``reference`` is the data (fitted here) or a profile fitted before, whose features are
    the monitor's (``columns.features``, when given, picks some of them). Performance
    metrics are computed when ``columns.label`` is set: classification or regression is
    chosen from the reference's label column, or from ``labels`` (the events' label
    column) when the reference is a profile, which keeps no labels.
    """
    if isinstance(reference, ReferenceProfile):
        profile = reference
        if columns.features is not None:
            wanted = set(columns.features)
            unknown = sorted(wanted - {*profile.numeric, *profile.categorical})
            if unknown:
                raise ValueError(f"features not in the reference profile: {unknown}")
            profile = profile.select(
                [f for f in profile.numeric if f in wanted],
                [f for f in profile.categorical if f in wanted],
            )
    else:
        profile = fit_reference(reference, columns)
        if columns.label is not None and columns.label in reference.columns:
            labels = reference.get_column(columns.label)
    performance = None
    if columns.label is not None and labels is not None:
        performance = _performance(labels)
    return Monitor(
        deployment=deployment,
        reference=profile,
        window=window,
        min_samples=min_samples,
        performance=performance,
    )


def _performance(labels: pl.Series) -> PerformanceSpec:
    """Classification when the labels are few distinct classes, else regression."""
    distinct = labels.drop_nulls().unique()
    integral = labels.dtype.is_numeric() and bool((distinct.cast(pl.Float64) % 1 == 0).all())
    if (not labels.dtype.is_numeric() or integral) and distinct.len() <= 50:
        values = distinct.to_list()
        classes = sorted(str(int(v)) if isinstance(v, float) else str(v) for v in values)
        return PerformanceSpec(task="classification", classes=tuple(classes))
    return PerformanceSpec(task="regression")


def event_time_ms(frame: pl.DataFrame, column: str | None) -> np.ndarray:
    """Event times in epoch milliseconds (text parsed as ISO 8601; no column: the row order)."""
    if column is None:
        return np.arange(frame.height, dtype=np.int64)
    series = frame.get_column(column)
    if series.dtype == pl.String:
        series = series.str.to_datetime(time_zone="UTC", time_unit="ms")
    if series.dtype.is_temporal():
        return series.dt.epoch("ms").to_numpy().astype(np.int64)
    return series.cast(pl.Int64).to_numpy()


def columns_of(
    chunk: pl.DataFrame, ts_ms: np.ndarray, monitor: Monitor, columns: ReplayColumns, first_row: int
) -> PredictionColumns:
    """A chunk of the events file as pipeline columns."""
    n = chunk.height

    def objects(name: str | None) -> np.ndarray:
        if name is None or name not in chunk.columns:
            return np.full(n, None, dtype=object)
        return np.array(chunk.get_column(name).to_list(), dtype=object)

    prediction = chunk.get_column(columns.prediction) if columns.prediction else None
    numeric_prediction = prediction is not None and prediction.dtype.is_numeric()
    ids = (
        chunk.get_column(columns.id).cast(pl.String).to_numpy().astype(object)
        if columns.id and columns.id in chunk.columns
        else np.array([str(first_row + i) for i in range(n)], dtype=object)
    )
    return PredictionColumns(
        deployment=monitor.deployment,
        event_id=ids,
        ts_ms=ts_ms,
        numeric={
            f: chunk.get_column(f).cast(pl.Float64).fill_null(np.nan).to_numpy()
            for f in monitor.numeric
        },
        categorical={
            f: np.array(chunk.get_column(f).cast(pl.String).to_list(), dtype=object)
            for f in monitor.categorical
        },
        prediction_value=(
            prediction.cast(pl.Float64).fill_null(np.nan).to_numpy()
            if numeric_prediction and prediction is not None
            else np.full(n, np.nan)
        ),
        prediction_class=(
            np.full(n, None, dtype=object) if numeric_prediction else objects(columns.prediction)
        ),
        label=objects(columns.label),
        latency_ms=np.full(n, np.nan),
        request_id=np.full(n, None, dtype=object),
        error=np.zeros(n, dtype=bool),
        metrics={},
        payload=lambda i: chunk.row(i, named=True).__repr__().encode(),
    )


def replay(
    events: pl.DataFrame,
    pipeline: Pipeline,
    monitor: Monitor,
    columns: ReplayColumns,
    *,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Stream ``events`` through ``pipeline`` in event-time order; return the rows sent.

    Every open window is closed at the end (the stream is over).
    """
    ts = event_time_ms(events, columns.timestamp)
    order = np.argsort(ts, kind="stable")
    events = events[order]
    ts = ts[order]
    for start in range(0, events.height, chunk_rows):
        chunk = events.slice(start, chunk_rows)
        rows = columns_of(chunk, ts[start : start + chunk.height], monitor, columns, start)
        pipeline.process(Decoded(predictions=[rows]))
        if progress is not None:
            progress(chunk.height)
    pipeline.flush()
    return events.height


def split_names(text: str | None) -> tuple[str, ...] | None:
    """``"a,b"`` -> ``("a", "b")``; ``None`` stays ``None``."""
    if text is None:
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


def summarize(lines: Sequence[dict[str, object]]) -> dict[str, int]:
    """Counts for a replay summary: windows, drifted (window, feature, statistic) rows."""
    windows = {(line["deployment"], line["window_start"]) for line in lines}
    return {"windows": len(windows), "drifted_rows": sum(1 for line in lines if line["drifted"])}
