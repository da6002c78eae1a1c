"""Typed columns straight from Arrow arrays, without a Python object per value.

The counterparts of :mod:`engine.columns`' converters for an Arrow IPC payload's columns.
Each returns the same ``(typed, bad)`` pair the list converters would return for
``values.to_pylist()`` — the rules are theirs — or ``None`` when the Arrow type is not one
it reads directly; the caller then converts the values as Python objects. What is read
directly:

* numbers from integer and floating columns: a ``float64`` column without nulls is a
  zero-copy view; nulls become NaN (missing, or bad when the field is required);
* text from string columns (plain or dictionary-encoded): one Python string per distinct
  value of a dictionary, shared by its rows;
* categories from string columns as :class:`detectors.CategoryCodes` (the dictionary's
  indices against its values; a plain string column is dictionary-encoded first), so the
  window sketch counts them with one ``bincount``;
* timestamps from integer or floating epoch milliseconds, and from Arrow ``timestamp``
  columns of any unit (a zone-less timestamp is read as UTC; finer units are truncated
  to the millisecond, toward the past);
* flags from boolean columns; and a column of Arrow's ``null`` type (all missing) for any
  of them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from detectors import CategoryCodes

# Epoch milliseconds past this (about 146 million years) are no time: refused, not cast.
MAX_EPOCH_MS = 2**62
_PER_MS = {"s": 1, "ms": 1, "us": 1_000, "ns": 1_000_000}

Typed = tuple[NDArray[np.float64], NDArray[np.bool_]]


def is_number(kind: pa.DataType) -> bool:
    """Integer or floating (not boolean)."""
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _is_text(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _nulls(values: pa.Array) -> NDArray[np.bool_]:
    if values.null_count == 0:
        return np.zeros(len(values), dtype=bool)
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def floats(values: pa.Array) -> NDArray[np.float64]:
    """The values as float64, nulls as NaN; a view of the buffer when nothing converts."""
    if not pa.types.is_float64(values.type):
        values = values.cast(pa.float64(), safe=False)  # rounds, as float(int) does
    if values.null_count:
        values = values.fill_null(np.nan)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def numbers(values: pa.Array, *, required: bool) -> Typed | None:
    """See :func:`engine.columns.numbers`: non-finite values are bad, nulls missing."""
    kind = values.type
    if pa.types.is_null(kind):
        return np.full(len(values), np.nan), np.full(len(values), required)
    if not is_number(kind):
        return None
    out = floats(values)
    bad = ~np.isfinite(out)
    if values.null_count:
        nulls = _nulls(values)
        bad = bad & ~nulls | (nulls & required)
    return out, bad


def _dictionary(values: pa.Array) -> tuple[NDArray[np.int64], list[str]] | None:
    """Codes into the distinct texts of a text or dictionary-of-text column; ``-1`` for null.

    A null entry of the dictionary itself (Arrow allows one) is a null too.
    """
    if _is_text(values.type):
        values = values.dictionary_encode()
    elif not (pa.types.is_dictionary(values.type) and _is_text(values.type.value_type)):
        return None
    indices = values.indices.cast(pa.int64())
    if indices.null_count:
        indices = indices.fill_null(-1)
    codes = np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    dictionary: list[str | None] = values.dictionary.to_pylist()
    if None in dictionary:
        remap = np.array([-1 if v is None else i for i, v in enumerate(dictionary)] + [-1])
        codes = remap[codes]
    return codes, ["" if v is None else v for v in dictionary]


def strings(
    values: pa.Array, *, required: bool, repeated: bool = False
) -> tuple[NDArray[np.object_], NDArray[np.bool_]] | None:
    """See :func:`engine.columns.strings`: empty text is bad, and null when ``required``.

    ``repeated``: the column holds few distinct values (a deployment), so it is decoded
    through a dictionary: one Python string per distinct value instead of one per row.
    """
    n = len(values)
    if pa.types.is_null(values.type):
        return np.full(n, None, dtype=object), np.full(n, required)
    if pa.types.is_dictionary(values.type) or (repeated and _is_text(values.type)):
        coded = _dictionary(values)
        if coded is None:
            return None
        codes, dictionary = coded
        out = np.array([*dictionary, None], dtype=object)[codes]  # code -1: the None
        nulls = codes < 0
        empty = np.array([v == "" for v in dictionary] + [False])[codes]
    elif _is_text(values.type):
        out = np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
        nulls = _nulls(values)
        lengths = pc.binary_length(values).fill_null(1)
        empty = np.asarray(lengths.to_numpy(zero_copy_only=False)) == 0
    else:
        return None
    bad = empty | (nulls & required)
    if bad.any():
        out[bad] = None
    return out, bad


def categories(values: pa.Array) -> tuple[CategoryCodes, NDArray[np.bool_]] | None:
    """See :func:`engine.columns.categories`: text categories as codes, nulls missing."""
    n = len(values)
    if pa.types.is_null(values.type):
        return CategoryCodes(np.full(n, -1, dtype=np.int64), ()), np.zeros(n, dtype=bool)
    coded = _dictionary(values)
    if coded is None:
        return None
    codes, dictionary = coded
    return CategoryCodes(codes, tuple(dictionary)), np.zeros(n, dtype=bool)


def flags(values: pa.Array) -> tuple[NDArray[np.bool_], NDArray[np.bool_]] | None:
    """See :func:`engine.columns.flags`: nulls are False."""
    n = len(values)
    if pa.types.is_null(values.type):
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if not pa.types.is_boolean(values.type):
        return None
    filled = values.fill_null(False) if values.null_count else values
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool), np.zeros(n, dtype=bool)


def timestamps(values: pa.Array) -> tuple[NDArray[np.int64], NDArray[np.bool_]] | None:
    """See :func:`engine.columns.timestamps`; Arrow timestamps too (module docstring)."""
    n = len(values)
    kind = values.type
    if pa.types.is_null(kind):
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    if pa.types.is_timestamp(kind):
        raw = values.cast(pa.int64())
        scale = 1_000 if kind.unit == "s" else 1
        limit = MAX_EPOCH_MS // scale
    elif pa.types.is_integer(kind) and not pa.types.is_uint64(kind):
        raw, scale, limit = values.cast(pa.int64()), 1, MAX_EPOCH_MS
    elif pa.types.is_floating(kind):
        as_float = floats(values)
        bad = ~(np.abs(as_float) < MAX_EPOCH_MS)  # NaN (and null) and infinities too
        out = np.zeros(n, dtype=np.int64)
        out[~bad] = as_float[~bad].astype(np.int64)
        return out, bad
    else:
        return None
    if raw.null_count:
        raw = raw.fill_null(0)
    counts = np.asarray(raw.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_timestamp(kind) and _PER_MS[kind.unit] > 1:
        counts = counts // _PER_MS[kind.unit]
    bad = ~((counts > -limit) & (counts < limit)) | _nulls(values)  # abs(-2**63) < 0
    if scale == 1 and not bad.any():
        return counts, bad  # epoch milliseconds already: in place
    return np.where(bad, 0, counts * scale), bad
