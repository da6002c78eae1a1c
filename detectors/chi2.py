"""Chi-square test of homogeneity for categorical features.

For one feature, the 2 x K contingency table has the reference counts in row 0 and the
current counts in row 1, one column per category of the union of both sides (a category
the current brings that the reference never had gets its own column; one that vanished
keeps its column with a 0). With row totals ``R_i``, column totals ``C_k`` and grand total
``N``, the expected count is ``E_ik = R_i C_k / N`` and::

    chi2 = sum_ik (O_ik - E_ik)^2 / E_ik,     dof = K - 1,     p = P(Chi2_dof >= chi2)

without Yates' continuity correction: the values of
``scipy.stats.chi2_contingency(table, correction=False)``. With a single category
(``K = 1``) there is nothing to compare: statistic 0 and p-value 1, as scipy reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from detectors.binning import IntMatrix
from detectors.categorical import count_category_pair
from detectors.results import DriftResult, insufficient_mask


def chi2_from_counts(
    reference: IntMatrix, current: IntMatrix
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Statistic and p-value per row of two aligned count matrices (features x categories).

    Columns where both sides count 0 (padding) are ignored; ``dof`` is the number of
    categories with any count, minus one.
    """
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    column = reference + current
    rows = np.stack([reference.sum(axis=1), current.sum(axis=1)], axis=1)
    total = rows.sum(axis=1)
    used = column > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total[:, None] > 0, column / total[:, None], 0.0)
        expected_ref = rows[:, :1] * share
        expected_cur = rows[:, 1:] * share
        terms = np.where(
            used,
            (reference - expected_ref) ** 2 / expected_ref
            + (current - expected_cur) ** 2 / expected_cur,
            0.0,
        )
    statistic = np.asarray(terms.sum(axis=1), dtype=np.float64)
    dof = used.sum(axis=1) - 1
    pvalue = np.where(dof > 0, stats.chi2.sf(statistic, np.maximum(dof, 1)), 1.0)
    statistic[dof <= 0] = 0.0
    return statistic, np.asarray(pvalue, dtype=np.float64)


def chi2(
    reference: Any,
    current: Any,
    *,
    min_samples: int = 1,
    names: Sequence[str] | None = None,
) -> DriftResult:
    """Chi-square homogeneity test per categorical feature (see the module docstring).

    Example:
        >>> r = chi2(["a", "a", "b", "b"], ["a", "b", "b", "c"])
        >>> round(float(r.statistic[0]), 4), round(float(r.pvalue[0]), 4)
        (1.3333, 0.5134)

    """
    labels, ref_counts, cur_counts, ref_nulls, cur_nulls = count_category_pair(
        reference, current, names=names
    )
    return chi2_result(labels, ref_counts, cur_counts, ref_nulls, cur_nulls, min_samples)


def chi2_result(
    names: tuple[str, ...],
    reference: IntMatrix,
    current: IntMatrix,
    nulls_reference: Sequence[int] | NDArray[np.int64],
    nulls_current: Sequence[int] | NDArray[np.int64],
    min_samples: int,
) -> DriftResult:
    """Build the chi-square :class:`DriftResult` from aligned count matrices."""
    n_ref = reference.sum(axis=1).astype(np.int64)
    n_cur = current.sum(axis=1).astype(np.int64)
    insufficient = insufficient_mask(n_ref, n_cur, min_samples)
    statistic, pvalue = chi2_from_counts(reference, current)
    statistic[insufficient] = np.nan
    pvalue[insufficient] = np.nan
    return DriftResult(
        name="chi2",
        names=names,
        statistic=statistic,
        pvalue=pvalue,
        n_reference=n_ref,
        n_current=n_cur,
        nulls_reference=np.asarray(nulls_reference, dtype=np.int64),
        nulls_current=np.asarray(nulls_current, dtype=np.int64),
        insufficient=insufficient,
        method=("exact",) * len(names),
    )
