"""Categorical columns: coercion to categories and counting against a vocabulary.

Categories are compared by their string form (``1`` and ``"1"`` are the same category,
``True`` is ``"True"``), so that reference and current data of slightly different types
still line up. ``None``, ``NaN`` and polars nulls are missing: dropped and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from detectors._columns import column_names
from detectors.binning import IntMatrix
from detectors.errors import DetectorInputError


def as_category_columns(
    data: Any, *, names: Sequence[str] | None = None, role: str = "input"
) -> tuple[list[pl.Series], tuple[str, ...]]:
    """Split ``data`` (rows x features, 1-D one feature, or a polars frame) into string series."""
    if isinstance(data, pl.Series):
        data = data.to_frame()
    if isinstance(data, pl.DataFrame):
        labels = column_names(data.width, names if names is not None else data.columns, role)
        if data.height == 0 or data.width == 0:
            raise DetectorInputError(f"{role} is empty (shape {data.shape})")
        return [_strings(data.to_series(j)) for j in range(data.width)], labels
    array = np.asarray(data, dtype=object)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise DetectorInputError(f"{role} must be 1-D or 2-D (rows x features), got {array.ndim}-D")
    labels = column_names(array.shape[1], names, role)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DetectorInputError(f"{role} is empty (shape {array.shape})")
    columns = []
    for j in range(array.shape[1]):
        values = array[:, j].tolist()
        if not set(map(type, values)) <= {str, type(None)}:  # text already: no per-value pass
            values = [None if _missing(v) else str(v) for v in values]
        columns.append(pl.Series(labels[j], values, dtype=pl.String))
    return columns, labels


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value))


def _strings(series: pl.Series) -> pl.Series:
    if series.dtype.is_float():
        series = series.fill_nan(None)
    return series.cast(pl.String)


def value_counts(column: pl.Series) -> tuple[dict[str, int], int]:
    """Count each category of one column; also return the number of missing values."""
    counted = column.drop_nulls().value_counts()
    keys = counted.get_column(column.name).to_list()
    values = counted.get_column("count").to_list()
    return dict(zip(keys, values, strict=True)), column.null_count()


def align_counts(
    reference: dict[str, int], current: dict[str, int]
) -> tuple[list[str], NDArray[np.int64], NDArray[np.int64]]:
    """Both sides' counts over one category list: reference categories (sorted), then unseen ones.

    A category the reference has but the current lacks keeps its column with a 0; one the
    current brings that the reference never had gets a column of its own.
    """
    categories = sorted(reference) + sorted(set(current) - set(reference))
    ref = np.array([reference.get(c, 0) for c in categories], dtype=np.int64)
    cur = np.array([current.get(c, 0) for c in categories], dtype=np.int64)
    return categories, ref, cur


def count_category_pair(
    reference: Any, current: Any, *, names: Sequence[str] | None
) -> tuple[tuple[str, ...], IntMatrix, IntMatrix, NDArray[np.int64], NDArray[np.int64]]:
    """Both sides' category counts, aligned per feature and padded with zeros to one width.

    Returns ``(names, reference_counts, current_counts, reference_nulls, current_nulls)``;
    feature ``j``'s columns follow :func:`align_counts`.
    """
    ref_columns, labels = as_category_columns(reference, names=names, role="reference")
    cur_columns, _ = as_category_columns(current, names=labels, role="current")
    if len(cur_columns) != len(ref_columns):
        raise DetectorInputError(
            f"current has {len(cur_columns)} features, reference has {len(ref_columns)}"
        )
    rows: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []
    ref_nulls, cur_nulls = [], []
    for ref_column, cur_column in zip(ref_columns, cur_columns, strict=True):
        ref_counts, ref_null = value_counts(ref_column)
        cur_counts, cur_null = value_counts(cur_column)
        _, ref_row, cur_row = align_counts(ref_counts, cur_counts)
        rows.append((ref_row, cur_row))
        ref_nulls.append(ref_null)
        cur_nulls.append(cur_null)
    return (
        labels,
        stack_padded([r for r, _ in rows]),
        stack_padded([c for _, c in rows]),
        np.array(ref_nulls, dtype=np.int64),
        np.array(cur_nulls, dtype=np.int64),
    )


def stack_padded(rows: Sequence[NDArray[np.int64]]) -> IntMatrix:
    """Stack 1-D count rows of different lengths into one zero-padded matrix."""
    width = max((row.size for row in rows), default=0)
    out = np.zeros((len(rows), max(width, 1)), dtype=np.int64)
    for j, row in enumerate(rows):
        out[j, : row.size] = row
    return out


@dataclass(frozen=True)
class CategoryCodes:
    """A categorical column as integer codes into its distinct categories (Arrow's dictionary form).

    Row ``i`` holds ``categories[codes[i]]``, or is missing when ``codes[i] == -1``. Counting
    it is one ``bincount`` over the codes, with no per-row text. ``categories`` may repeat a
    text (Arrow does not forbid it): :meth:`counts` adds the codes of one text together.
    Indexing with an integer array or a boolean mask selects rows, as on a numpy array.
    """

    codes: NDArray[np.int64]
    categories: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.codes.size)

    def __getitem__(self, rows: NDArray[np.intp] | NDArray[np.bool_]) -> CategoryCodes:
        return CategoryCodes(self.codes[rows], self.categories)

    def tolist(self) -> list[str | None]:
        """The rows' categories as text (``None`` where missing)."""
        return [None if c < 0 else self.categories[c] for c in self.codes.tolist()]

    def counts(self) -> tuple[dict[str, int], int]:
        """Count per category present, and the number of missing rows."""
        counted = np.bincount(self.codes + 1, minlength=len(self.categories) + 1).tolist()
        out: dict[str, int] = {}
        for category, count in zip(self.categories, counted[1:], strict=True):
            if count:
                out[category] = out.get(category, 0) + count
        return out, counted[0]
