"""Serving health: a mergeable log-bucketed latency histogram and the error rate.

:class:`LatencyHistogram` follows DDSketch (Masson, Rim & Lee, VLDB 2019): with relative
accuracy ``a`` and ``gamma = (1 + a) / (1 - a)``, a latency ``x > 0`` (milliseconds) goes to
bucket ``i = ceil(log_gamma(x))``, which covers ``(gamma**(i-1), gamma**i]``; zeros go to a
dedicated zero bucket. A bucket is reported as ``2 gamma**i / (gamma + 1)``, within relative
error ``a`` of every value it holds. Buckets are dense between the smallest and largest index
seen (about ``ln(max / min) / (2 a)`` buckets: 691 for six orders of magnitude at ``a = 0.01``).

>>> h = LatencyHistogram.empty().update([12.0, 15.0, 110.0, 0.0])
>>> h.count
4
>>> bool(abs(h.quantile(1.0) - 110.0) <= 0.01 * 110.0)
True
>>> error_rate(3, 200).rate
0.015
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from detectors._columns import as_vector, readonly
from detectors.errors import DetectorInputError

__all__ = ["ErrorRate", "LatencyHistogram", "error_rate"]

COLUMN = "latency_ms"


def _latencies(values: Any) -> NDArray[np.float64]:
    """Coerce latencies to a 1-D float64 array: non-empty, numeric, finite and >= 0."""
    latencies = as_vector(values, COLUMN)
    if np.isnan(latencies).any():
        raise DetectorInputError("contains NaN; a latency cannot be missing", column=COLUMN)
    if (latencies < 0).any():
        raise DetectorInputError("contains a negative latency", column=COLUMN)
    return latencies


@dataclass(frozen=True, eq=False)
class LatencyHistogram:
    """Counts of latencies (ms) in logarithmic buckets; mergeable and serialisable.

    Guarantee: for ``q`` in ``[0, 1]`` and ``n`` values, :meth:`quantile` returns a value
    within relative error ``relative_accuracy`` (up to floating-point rounding) of the exact
    value at rank ``floor(q * (n - 1))`` (0-based) of the sorted data, i.e. of
    ``np.quantile(data, q, method="lower")``; exactly ``0.0`` when that value is zero.

    Attributes:
        relative_accuracy: ``a`` in ``(0, 1)``; ``gamma = (1 + a) / (1 - a)``.
        offset: bucket index of ``counts[0]``.
        counts: int64 counts of buckets ``offset .. offset + len(counts) - 1``; bucket ``i``
            holds the latencies in ``(gamma**(i-1), gamma**i]``.
        zero_count: latencies equal to zero (``0.0`` or ``-0.0``).

    Instances are immutable: :meth:`update` and :meth:`merge` return new histograms.

    """

    relative_accuracy: float
    offset: int
    counts: NDArray[np.int64]
    zero_count: int = 0

    def __post_init__(self) -> None:
        a = self.relative_accuracy
        if not isinstance(a, int | float) or not 0 < a < 1:
            raise DetectorInputError(f"relative_accuracy must be in (0, 1), got {a!r}")
        counts = np.array(self.counts, dtype=np.int64)
        if counts.ndim != 1 or (counts < 0).any() or self.zero_count < 0:
            raise DetectorInputError("counts must be a 1-D array of non-negative integers")
        object.__setattr__(self, "relative_accuracy", float(a))
        object.__setattr__(self, "offset", int(self.offset) if counts.size else 0)
        object.__setattr__(self, "zero_count", int(self.zero_count))
        object.__setattr__(self, "counts", readonly(counts))

    @classmethod
    def empty(cls, relative_accuracy: float = 0.01) -> LatencyHistogram:
        """Return a histogram with no values."""
        return cls(relative_accuracy, 0, np.zeros(0, dtype=np.int64))

    @property
    def gamma(self) -> float:
        """Ratio between consecutive bucket bounds, ``(1 + a) / (1 - a)``."""
        return (1 + self.relative_accuracy) / (1 - self.relative_accuracy)

    @property
    def count(self) -> int:
        """Number of latencies counted, zeros included."""
        return self.zero_count + int(self.counts.sum())

    def _with(self, offset: int, counts: NDArray[np.int64], zero_count: int) -> LatencyHistogram:
        return LatencyHistogram(self.relative_accuracy, offset, counts, zero_count)

    def _widen(self, low: int, high: int) -> NDArray[np.int64]:
        """Return this histogram's counts laid over the bucket range ``low .. high``."""
        out = np.zeros(high - low + 1, dtype=np.int64)
        start = self.offset - low
        out[start : start + self.counts.size] += self.counts
        return out

    def update(self, values_ms: Any) -> LatencyHistogram:
        """Return this histogram plus ``values_ms`` (1-D, non-empty, finite, ``>= 0``).

        ``NaN``, infinite, negative or non-numeric latencies are refused with a
        :class:`DetectorInputError` naming the column ``"latency_ms"``. Input is not modified.
        """
        latencies = _latencies(values_ms)
        positive = latencies[latencies > 0]
        zeros = latencies.size - positive.size
        if positive.size == 0:
            return self._with(self.offset, self.counts, self.zero_count + zeros)
        index = np.ceil(np.log(positive) / math.log(self.gamma)).astype(np.int64)
        low, high = int(index.min()), int(index.max())
        if self.counts.size:
            low, high = min(low, self.offset), max(high, self.offset + self.counts.size - 1)
        counts = self._widen(low, high)
        counts += np.bincount(index - low, minlength=counts.size)
        return self._with(low, counts, self.zero_count + zeros)

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Return the histogram of both inputs' data (same relative accuracy required)."""
        if other.relative_accuracy != self.relative_accuracy:
            raise DetectorInputError(
                f"cannot merge relative accuracy {other.relative_accuracy} "
                f"into {self.relative_accuracy}"
            )
        zero_count = self.zero_count + other.zero_count
        if not other.counts.size:
            return self._with(self.offset, self.counts, zero_count)
        if not self.counts.size:
            return self._with(other.offset, other.counts, zero_count)
        low = min(self.offset, other.offset)
        high = max(self.offset + self.counts.size, other.offset + other.counts.size) - 1
        return self._with(low, self._widen(low, high) + other._widen(low, high), zero_count)

    @overload
    def quantile(self, q: float) -> float: ...

    @overload
    def quantile(self, q: NDArray[Any] | Sequence[float]) -> NDArray[np.float64]: ...

    def quantile(self, q: float | NDArray[Any] | Sequence[float]) -> float | NDArray[np.float64]:
        """Estimate the ``q``-quantile(s) in milliseconds; ``NaN`` for an empty histogram.

        ``q`` is a scalar (a float is returned) or an array of values in ``[0, 1]`` (an
        array of the same shape is returned). See the class docstring for the guarantee.
        """
        qs = np.asarray(q, dtype=np.float64)
        if not ((qs >= 0) & (qs <= 1)).all():
            raise DetectorInputError("quantiles must be in [0, 1]", column="q")
        n = self.count
        if n == 0:
            result = np.full(qs.shape, np.nan)
        else:
            rank = np.floor((n - 1) * qs).astype(np.int64)
            cumulative = np.cumsum(self.counts)
            position = np.searchsorted(cumulative, rank - self.zero_count, side="right")
            gamma = self.gamma
            index = self.offset + np.minimum(position, self.counts.size - 1)
            value = 2.0 * np.power(gamma, index.astype(np.float64)) / (gamma + 1.0)
            result = np.where(rank < self.zero_count, 0.0, value)
        if result.ndim == 0:
            return float(result)
        return readonly(result)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: relative accuracy, offset, bucket counts and zero count."""
        return {
            "relative_accuracy": self.relative_accuracy,
            "offset": self.offset,
            "counts": self.counts.tolist(),
            "zero_count": self.zero_count,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyHistogram:
        """Rebuild a histogram from :meth:`to_dict` output; malformed data raises."""
        try:
            accuracy, offset, zeros = data["relative_accuracy"], data["offset"], data["zero_count"]
            counts = np.asarray(data["counts"])
        except (KeyError, TypeError) as exc:
            raise DetectorInputError(f"not a serialised latency histogram: {exc!r}") from None
        if counts.size and counts.dtype.kind not in "iu":
            raise DetectorInputError("counts must be integers")
        return cls(accuracy, offset, counts.astype(np.int64), zeros)


@dataclass(frozen=True)
class ErrorRate:
    """Share of failed requests in a window.

    Attributes:
        rate: ``errors / n`` as a fraction in ``[0, 1]``; ``NaN`` when ``n == 0``.
        errors: failed requests.
        n: all requests (failed included).
        insufficient: ``n == 0``.

    """

    rate: float
    errors: int
    n: int
    insufficient: bool


def error_rate(errors: int, total: int) -> ErrorRate:
    """Return the error rate ``errors / total``; ``0 <= errors <= total`` is required."""
    for name, value in (("errors", errors), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise DetectorInputError(f"must be a non-negative integer, got {value!r}", column=name)
    if errors > total:
        raise DetectorInputError(f"{errors} errors out of {total} requests", column="errors")
    return ErrorRate(
        rate=errors / total if total else float("nan"),
        errors=int(errors),
        n=int(total),
        insufficient=total == 0,
    )
