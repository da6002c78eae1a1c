"""Input coercion shared by every detector: 2-D float matrices with named columns.

Rules (the contract every public function relies on):

* a 1-D input is one feature; a 2-D input is rows x features; more dimensions are refused;
* an input with no rows or no columns is refused (``DetectorInputError``);
* columns must be numeric (bool, integer or float); strings, objects that do not convert,
  and complex numbers are refused with the column's name;
* ``+inf`` / ``-inf`` are refused with the column's name; ``NaN`` (and ``None`` in object
  input, and nulls in polars) is allowed and means "missing": statistics drop it and count it;
* the caller's array is never written to: a copy is taken whenever conversion is needed and
  the arrays handed back are never modified in place by the detectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.errors import DetectorInputError

FloatMatrix = NDArray[np.float64]


def column_names(count: int, names: Sequence[str] | None, role: str = "input") -> tuple[str, ...]:
    """Return ``names`` as a tuple, or ``column 0 .. column k-1`` when none are given."""
    if names is None:
        return tuple(f"column {j}" for j in range(count))
    if len(names) != count:
        raise DetectorInputError(f"{role} has {count} features, expected {len(names)}")
    return tuple(str(n) for n in names)


def _polars_to_numpy(data: Any) -> tuple[Any, list[str] | None]:
    """Convert a polars DataFrame/Series to numpy, keeping column names; nulls become NaN."""
    module = type(data).__module__
    if not module.startswith("polars"):
        return data, None
    import polars as pl

    if isinstance(data, pl.Series):
        data = data.to_frame()
    names = list(data.columns)
    for name, dtype in data.schema.items():
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise DetectorInputError(f"non-numeric dtype {dtype}", column=name)
    if not names:
        return np.empty((0, 0)), names
    # One query for every column; Fortran order makes each feature contiguous, so the
    # transposes the binning and sorting take later are free views.
    floats = data.select(pl.all().cast(pl.Float64).fill_null(float("nan")))
    return floats.to_numpy(order="fortran"), names


def as_matrix(
    data: Any, *, names: Sequence[str] | None = None, role: str = "input"
) -> tuple[FloatMatrix, tuple[str, ...]]:
    """Coerce ``data`` to a float64 matrix (rows x features) and its column names.

    ``role`` ("reference", "current" ...) only flavours error messages.
    """
    data, frame_names = _polars_to_numpy(data)
    array = np.asarray(data)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    elif array.ndim != 2:
        raise DetectorInputError(f"{role} must be 1-D or 2-D (rows x features), got {array.ndim}-D")
    labels = column_names(array.shape[1], names if names is not None else frame_names, role)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DetectorInputError(f"{role} is empty (shape {array.shape})")
    matrix = _to_float(array, labels, role)
    finite_or_nan = np.isfinite(matrix) | np.isnan(matrix)
    if not finite_or_nan.all():
        bad = int(np.argmin(finite_or_nan.all(axis=0)))
        raise DetectorInputError(f"{role} contains an infinite value", column=labels[bad])
    return matrix, labels


def _to_float(array: NDArray[Any], labels: tuple[str, ...], role: str) -> FloatMatrix:
    kind = array.dtype.kind
    if kind in "biuf":
        return np.asarray(array, dtype=np.float64)
    if kind == "c":
        raise DetectorInputError(f"{role} is complex; drift statistics need real numbers")
    out = np.empty(array.shape, dtype=np.float64)
    for j, label in enumerate(labels):
        column = array[:, j]
        if kind == "O":
            column = np.array([np.nan if v is None else v for v in column], dtype=object)
        try:
            converted = column.astype(np.float64)
        except (TypeError, ValueError):
            converted = None
        if converted is None or (kind in "USO" and _has_text(column)):
            raise DetectorInputError(f"{role} has non-numeric values", column=label)
        out[:, j] = converted
    return out


def _has_text(column: NDArray[Any]) -> bool:
    """Tell whether any value is a string: '1.5' converts to float but is not numeric data."""
    return bool(any(isinstance(v, str | bytes | np.str_) for v in column))


def check_same_columns(reference_names: tuple[str, ...], current: FloatMatrix) -> None:
    """Refuse a current batch whose feature count differs from the reference's."""
    if current.shape[1] != len(reference_names):
        raise DetectorInputError(
            f"current has {current.shape[1]} features, reference has {len(reference_names)}"
        )


def readonly(array: NDArray[Any]) -> NDArray[Any]:
    """Mark ``array`` read-only so that a frozen result is frozen all the way down."""
    array.setflags(write=False)
    return array


def as_vector(values: Any, column: str) -> NDArray[np.float64]:
    """Coerce one 1-D, non-empty numeric input to float64 (NaN allowed, infinities refused)."""
    if np.ndim(values) != 1:
        raise DetectorInputError(f"must be 1-D, got {np.ndim(values)}-D", column=column)
    if np.shape(values)[0] == 0:
        raise DetectorInputError("is empty", column=column)
    if np.iscomplexobj(values):
        raise DetectorInputError("is complex; needs real numbers", column=column)
    matrix, _ = as_matrix(values, names=(column,), role=column)
    return matrix[:, 0]
