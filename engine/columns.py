"""Typed columns from decoded JSON values, checked in bulk with a reason per bad row.

Each converter takes a list of Python values (one per event) and returns the typed numpy
array plus a boolean mask of rows whose value is unusable. The common case (every value
already of the right type) costs one C-level pass; only mixed columns fall back to a
per-value check, and only to find which rows are wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import is_
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

_NUMBER = (int, float)
_NONE = type(None)


def numbers(
    values: Sequence[Any], *, required: bool
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Floats from JSON numbers (``None`` -> NaN unless ``required``); anything else is bad.

    Booleans, strings (even ``"1.5"``) and non-finite values are bad: a number must be sent
    as a number.
    """
    kinds = set(map(type, values))
    if kinds <= {float, int} or (not required and kinds <= {float, int, _NONE}):
        out = np.array(values, dtype=np.float64)
        bad = ~np.isfinite(out)
        if _NONE in kinds:  # a NaN from None is a missing value, not a bad one
            bad &= ~(np.isnan(out) & is_none(values))
        return out, bad
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, _NUMBER) and not isinstance(v, bool) and np.isfinite(v):
            out[i] = v
        elif v is not None or required:
            bad[i] = True
    return out, bad


def strings(
    values: Sequence[Any], *, required: bool
) -> tuple[NDArray[np.object_], NDArray[np.bool_]]:
    """Non-empty strings (``None`` allowed unless ``required``); anything else is bad."""
    out = np.array(values, dtype=object)
    kinds = set(map(type, values))
    allowed = {str} if required else {str, _NONE}
    # "" in values: a C-level scan, cheaper than comparing every value when none is empty
    if kinds <= allowed and "" not in values:
        return out, np.zeros(len(values), dtype=bool)
    bad = np.fromiter(
        (not (isinstance(v, str) and v) and (v is not None or required) for v in values),
        dtype=bool,
        count=len(values),
    )
    out[bad] = None
    return out, bad


def categories(values: Sequence[Any]) -> tuple[NDArray[np.object_], NDArray[np.bool_]]:
    """Category text from strings, numbers or booleans (``None`` missing); lists/objects bad."""
    kinds = set(map(type, values))
    if kinds <= {str, _NONE}:
        return np.array(values, dtype=object), np.zeros(len(values), dtype=bool)
    out = np.empty(len(values), dtype=object)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None or isinstance(v, str):
            out[i] = v
        elif isinstance(v, bool):
            out[i] = "true" if v else "false"
        elif isinstance(v, _NUMBER):
            out[i] = str(v)
        else:
            bad[i] = True
    return out, bad


def flags(values: Sequence[Any]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Booleans (``None`` -> False); anything else is bad."""
    kinds = set(map(type, values))
    if kinds <= {_NONE}:
        return np.zeros(len(values), dtype=bool), np.zeros(len(values), bool)
    if kinds <= {bool, _NONE}:
        return np.array([v is True for v in values], dtype=bool), np.zeros(len(values), bool)
    out = np.array([v is True for v in values], dtype=bool)
    bad = np.array([not (v is None or isinstance(v, bool)) for v in values], dtype=bool)
    return out, bad


# Epoch milliseconds past this (about 146 million years) are no time: refused, not cast.
_MAX_EPOCH_MS = 2.0**62


def timestamps(values: Sequence[Any]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Event times in milliseconds since the epoch, from RFC 3339 text or epoch-ms numbers.

    Numbers that are not finite or beyond +-2**62 ms are bad (``bad`` is True there).
    """
    n = len(values)
    out = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=bool)
    kinds = set(map(type, values))
    if kinds <= {int, float}:
        as_float = np.array(values, dtype=np.float64)
        bad = ~(np.abs(as_float) < _MAX_EPOCH_MS)  # NaN and infinities too
        out[~bad] = as_float[~bad].astype(np.int64)
        return out, bad
    is_text = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=n)
    is_number = np.fromiter(
        (isinstance(v, _NUMBER) and not isinstance(v, bool) for v in values), dtype=bool, count=n
    )
    bad = ~(is_text | is_number)
    if is_number.any():
        numbers_ = np.array([values[int(i)] for i in np.flatnonzero(is_number)], dtype=np.float64)
        finite = np.abs(numbers_) < _MAX_EPOCH_MS
        out[np.flatnonzero(is_number)[finite]] = numbers_[finite].astype(np.int64)
        bad[np.flatnonzero(is_number)[~finite]] = True
    if is_text.any():
        where = np.flatnonzero(is_text)
        text = pl.Series([values[int(i)] for i in where], dtype=pl.String)
        parsed = text.str.to_datetime(time_zone="UTC", strict=False, time_unit="ms")
        millis = parsed.dt.epoch("ms").to_numpy()
        missing = parsed.is_null().to_numpy()
        out[where[~missing]] = millis[~missing].astype(np.int64)
        bad[where[missing]] = True
    return out, bad


def is_none(values: Sequence[Any] | NDArray[np.object_]) -> NDArray[np.bool_]:
    """Where an object array (or a sequence) holds ``None``."""
    return np.fromiter(map(is_, values, repeat(None)), dtype=bool, count=len(values))
