"""Reference and current counted over the same reference-fitted bins (shared by PSI, JS, ...)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors._columns import as_matrix, check_same_columns
from detectors.binning import IntMatrix, bin_counts, fit_binnings
from detectors.categorical import count_category_pair
from detectors.results import DriftResult, insufficient_mask


@dataclass(frozen=True)
class BinnedPair:
    """Counts of a reference and a current batch over the reference's bins."""

    names: tuple[str, ...]
    reference: IntMatrix
    current: IntMatrix
    nulls_reference: NDArray[np.int64]
    nulls_current: NDArray[np.int64]


def count_pair(
    reference: Any,
    current: Any,
    *,
    bins: int,
    names: Sequence[str] | None,
    categorical: bool = False,
) -> BinnedPair:
    """Fit PSI-style bins on ``reference`` and count both sides over them.

    Numeric bins: reference quantiles at ``i / bins`` (``i = 1 .. bins - 1``), duplicates
    removed, outer bins open; a feature with at most ``bins`` distinct reference values is
    binned per distinct value plus an overflow bin (see :mod:`detectors.binning`).
    Categorical (``categorical=True``): one bin per category of either side, categories the
    reference never had each in their own bin (see :func:`categorical.align_counts`).
    """
    if categorical:
        labels, ref_counts, cur_counts, ref_nulls, cur_nulls = count_category_pair(
            reference, current, names=names
        )
        return BinnedPair(labels, ref_counts, cur_counts, ref_nulls, cur_nulls)
    ref, labels = as_matrix(reference, names=names, role="reference")
    cur, _ = as_matrix(current, names=labels, role="current")
    check_same_columns(labels, cur)
    [(binning, ref_counts)], ref_nulls = fit_binnings(ref, ((bins, bins),))
    cur_counts, cur_nulls = bin_counts(cur, binning)
    return BinnedPair(labels, ref_counts, cur_counts, ref_nulls, cur_nulls)


def binned_result(
    name: str,
    pair: BinnedPair,
    statistic_of: Callable[[IntMatrix, IntMatrix], NDArray[np.float64]],
    min_samples: int,
) -> DriftResult:
    """Build a :class:`DriftResult` for a statistic computed from two count matrices."""
    names, reference, current = pair.names, pair.reference, pair.current
    nulls_reference, nulls_current = pair.nulls_reference, pair.nulls_current
    n_ref = reference.sum(axis=1).astype(np.int64)
    n_cur = current.sum(axis=1).astype(np.int64)
    insufficient = insufficient_mask(n_ref, n_cur, min_samples)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.asarray(statistic_of(reference, current), dtype=np.float64)
    statistic[insufficient] = np.nan
    return DriftResult(
        name=name,
        names=names,
        statistic=statistic,
        pvalue=None,
        n_reference=n_ref,
        n_current=n_cur,
        nulls_reference=np.asarray(nulls_reference, dtype=np.int64).copy(),
        nulls_current=np.asarray(nulls_current, dtype=np.int64).copy(),
        insufficient=insufficient,
        method=("binned",) * len(names),
    )


def proportions(counts: IntMatrix) -> NDArray[np.float64]:
    """Row-wise proportions ``counts / counts.sum()``; an all-zero row stays zero."""
    totals = counts.sum(axis=1, keepdims=True)
    out: NDArray[np.float64] = np.zeros(counts.shape)
    np.divide(counts, totals, out=out, where=totals > 0)
    return out


def binned_statistic(
    name: str,
    statistic_of: Callable[[IntMatrix, IntMatrix], NDArray[np.float64]],
    reference: Any,
    current: Any,
    *,
    bins: int,
    categorical: bool,
    min_samples: int,
    names: Sequence[str] | None,
) -> DriftResult:
    """Count both sides over the reference's bins (or categories), then apply ``statistic_of``."""
    pair = count_pair(reference, current, bins=bins, names=names, categorical=categorical)
    return binned_result(name, pair, statistic_of, min_samples)
