"""First Wasserstein (earth mover's) distance between reference and current, per feature.

Definition, for the empirical distributions of one feature::

    W1 = integral over t of | F_ref(t) - F_cur(t) | dt  =  integral_0^1 | Q_ref(u) - Q_cur(u) | du

in the feature's own units (``F`` the empirical CDFs, ``Q`` the empirical quantile
functions), equal to ``scipy.stats.wasserstein_distance`` (unweighted). It is computed in the
quantile form: for sizes ``n`` and ``m`` both quantile functions are step functions whose
steps sit on the grid ``{i/n} union {j/m}``, so with both samples sorted::

    W1 = sum over grid cells [a, b) of (b - a) * | ref_(floor(a n)) - cur_(floor(a m)) |

The grid depends on ``(n, m)`` only and is shared by every feature of that size: no merge
of the values is needed, and the reference is sorted once (:class:`SortedReference`).

``normalized=True`` divides by the reference standard deviation (population, ``ddof=0``),
giving a unit-free distance in reference standard deviations. A constant reference
(standard deviation 0) gives ``0`` when the current matches it exactly and ``+inf`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors._columns import FloatMatrix
from detectors.results import DriftResult
from detectors.sorted_reference import SortedPair, SortedReference


@lru_cache(maxsize=64)
def _grid(n: int, m: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Cells of the common quantile grid for sizes n and m.

    Returns the reference index, the current index and the width of every cell, with the
    grid points held as exact integers over the denominator ``n * m``.
    """
    points = np.union1d(np.arange(n + 1, dtype=np.int64) * m, np.arange(m + 1, dtype=np.int64) * n)
    start = points[:-1]
    width = np.diff(points) / (n * m)
    for a in (start, width):
        a.setflags(write=False)
    ref_index, cur_index = start // m, start // n
    ref_index.setflags(write=False)
    cur_index.setflags(write=False)
    return ref_index, cur_index, width


def wasserstein(
    reference: Any,
    current: Any,
    *,
    normalized: bool = False,
    min_samples: int = 1,
    names: Sequence[str] | None = None,
) -> DriftResult:
    """W1 distance per feature (see the module docstring); ``reference`` may be prepared.

    Example:
        >>> import numpy as np
        >>> r = wasserstein(np.array([0.0, 1.0, 3.0]), np.array([5.0, 6.0, 8.0]))
        >>> float(r.statistic[0])
        5.0

    """
    pair = SortedPair.prepare(reference, current, min_samples=min_samples, names=names)
    ref, cur_sorted, m, insufficient = pair.reference, pair.current, pair.m, pair.insufficient

    distance = np.full(len(ref.names), np.nan)
    sizes = np.stack([ref.n, m], axis=1)
    for n_j, m_j in {(int(a), int(b)) for a, b in sizes[~insufficient]}:
        group = np.flatnonzero((ref.n == n_j) & (m == m_j) & ~insufficient)
        distance[group] = _distance(ref.values[group], cur_sorted[group], n_j, m_j)
    if normalized:
        distance = _normalize(distance, ref)
    return DriftResult(
        name="wasserstein_normed" if normalized else "wasserstein",
        names=ref.names,
        statistic=distance,
        pvalue=None,
        n_reference=ref.n.copy(),
        n_current=m,
        nulls_reference=ref.nulls.copy(),
        nulls_current=pair.nulls,
        insufficient=insufficient,
        method=("exact",) * len(ref.names),
    )


_BLOCK_VALUES = 1 << 18


def _distance(reference: FloatMatrix, current: FloatMatrix, n: int, m: int) -> FloatMatrix:
    ref_index, cur_index, width = _grid(n, m)
    out = np.empty(reference.shape[0])
    # Features in blocks of ~2**18 grid cells keep the gathered temporaries in cache.
    step = max(1, _BLOCK_VALUES // width.size)
    for start in range(0, reference.shape[0], step):
        rows = slice(start, start + step)
        ref_q = reference[rows, :n] if n == m else reference[rows][:, ref_index]
        cur_q = current[rows, :m] if n == m else current[rows][:, cur_index]
        out[rows] = np.abs(ref_q - cur_q) @ width
    return out


def _normalize(distance: FloatMatrix, ref: SortedReference) -> FloatMatrix:
    """Divide by the reference's population standard deviation (see the module docstring)."""
    std = np.array(
        [np.std(ref.values[j, : ref.n[j]]) if ref.n[j] else np.nan for j in range(len(ref.n))]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = distance / std
    flat = std == 0
    scaled[flat] = np.where(distance[flat] == 0, 0.0, np.inf)
    return np.asarray(scaled, dtype=np.float64)
