"""Drift statistics from window sketches: O(features x bins), whatever the window size.

* PSI, Jensen-Shannon and Hellinger use the profile's coarse bins and chi-square the
  category counts: the same counts the batch functions build from raw values, so the values
  are equal to :func:`detectors.psi`, :func:`detectors.jensen_shannon`,
  :func:`detectors.hellinger` and :func:`detectors.chi2` on the same data.
* KS and Wasserstein are estimates from the fine bins, each with a per-feature
  ``error_bound`` (the largest possible distance to the exact value on the raw data):

  - KS: the CDF gap at every fine edge, ``D_s = max_e |F_ref(e-) - F_cur(e-)|``. Inside a
    bin each CDF rises by that bin's share only, so
    ``D_s <= D <= D_s + max_b max(p_ref[b], p_cur[b])``.
  - Wasserstein: the fine edges, plus the smallest and largest value seen on either side,
    cut the line into segments; on segment ``b`` of width ``w_b`` each CDF stays within half
    of its bin share of its mid value, so
    ``W_s = sum_b w_b |mid_ref[b] - mid_cur[b]|`` is within
    ``sum_b w_b (p_ref[b] + p_cur[b]) / 2`` of the exact distance.

  The KS p-value is computed from ``D_s`` with the sizes of both sides, as in
  :func:`detectors.ks_2samp` (``"auto"``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detectors._binned import BinnedPair, binned_result, proportions
from detectors.categorical import stack_padded
from detectors.chi2 import chi2_result
from detectors.divergence import hellinger_from_counts, jensen_shannon_from_counts
from detectors.errors import DetectorInputError
from detectors.ks import KSMethod, _pvalues
from detectors.psi import psi_from_counts
from detectors.results import DriftResult, insufficient_mask
from detectors.sketch import WindowSketch


def _pair(sketch: WindowSketch, categorical: bool) -> BinnedPair:
    """Reference and window counts: coarse bins, or categories aligned as in the batch path."""
    profile = sketch.profile
    if not categorical:
        return BinnedPair(
            profile.numeric,
            profile.coarse_counts,
            sketch.coarse_counts,
            profile.nulls,
            sketch.nulls,
        )
    ref_rows, cur_rows = [], []
    for j, vocabulary in enumerate(profile.vocabulary):
        unseen = sketch.unseen[j]
        extra = sorted(unseen)
        ref_rows.append(
            np.concatenate([profile.category_counts[j, : len(vocabulary)], np.zeros(len(extra))])
        )
        cur_rows.append(
            np.concatenate(
                [sketch.category_counts[j, : len(vocabulary)], [unseen[c] for c in extra]]
            )
        )
    return BinnedPair(
        profile.categorical,
        stack_padded([r.astype(np.int64) for r in ref_rows]),
        stack_padded([c.astype(np.int64) for c in cur_rows]),
        profile.category_nulls,
        sketch.category_nulls,
    )


def sketch_psi(
    sketch: WindowSketch, *, categorical: bool = False, min_samples: int = 1
) -> DriftResult:
    """PSI of every numeric feature over the coarse bins (or categorical, over categories)."""
    return binned_result("psi", _pair(sketch, categorical), psi_from_counts, min_samples)


def sketch_jensen_shannon(
    sketch: WindowSketch, *, categorical: bool = False, min_samples: int = 1
) -> DriftResult:
    """Jensen-Shannon distance (base 2) of every numeric (or categorical) feature."""
    return binned_result(
        "jensen_shannon", _pair(sketch, categorical), jensen_shannon_from_counts, min_samples
    )


def sketch_hellinger(
    sketch: WindowSketch, *, categorical: bool = False, min_samples: int = 1
) -> DriftResult:
    """Hellinger distance of every numeric (or categorical) feature."""
    return binned_result(
        "hellinger", _pair(sketch, categorical), hellinger_from_counts, min_samples
    )


def sketch_chi2(
    sketch: WindowSketch, *, categorical: bool = True, min_samples: int = 1
) -> DriftResult:
    """Chi-square homogeneity test of every categorical feature (unseen categories apart)."""
    if not categorical:
        raise DetectorInputError("chi2 takes categorical features only")
    pair = _pair(sketch, True)
    return chi2_result(
        pair.names,
        pair.reference,
        pair.current,
        pair.nulls_reference,
        pair.nulls_current,
        min_samples,
    )


def sketch_ks(
    sketch: WindowSketch,
    *,
    method: KSMethod = "auto",
    categorical: bool = False,
    min_samples: int = 1,
) -> DriftResult:
    """KS statistic estimate and p-value per numeric feature, with its error bound."""
    if categorical:
        raise DetectorInputError("ks takes numeric features only")
    profile = sketch.profile
    n, m = profile.n, sketch.n
    insufficient = insufficient_mask(n, m, min_samples)
    p_ref, p_cur = proportions(profile.fine_counts), proportions(sketch.fine_counts)
    gap = np.abs(np.cumsum(p_ref, axis=1) - np.cumsum(p_cur, axis=1))
    statistic = np.asarray(gap.max(axis=1), dtype=np.float64)
    bound = np.asarray(np.maximum(p_ref, p_cur).max(axis=1), dtype=np.float64)
    pvalue, used = _pvalues(statistic, n, m, method)
    for a in (statistic, pvalue, bound):
        a[insufficient] = np.nan
    return DriftResult(
        name="ks",
        names=profile.numeric,
        statistic=statistic,
        pvalue=pvalue,
        n_reference=n.copy(),
        n_current=m,
        nulls_reference=profile.nulls.copy(),
        nulls_current=sketch.nulls.copy(),
        insufficient=insufficient,
        error_bound=bound,
        method=tuple(f"sketch+{u}" for u in used),
    )


def sketch_wasserstein(
    sketch: WindowSketch,
    *,
    normalized: bool = False,
    categorical: bool = False,
    min_samples: int = 1,
) -> DriftResult:
    """Wasserstein distance estimate per numeric feature, with its error bound.

    ``normalized=True`` divides estimate and bound by the reference's population standard
    deviation (a constant reference gives 0 for an exact match and ``+inf`` otherwise).
    """
    if categorical:
        raise DetectorInputError("wasserstein takes numeric features only")
    profile = sketch.profile
    n, m = profile.n, sketch.n
    insufficient = insufficient_mask(n, m, min_samples)
    p_ref, p_cur = proportions(profile.fine_counts), proportions(sketch.fine_counts)
    statistic = np.full(len(n), np.nan)
    bound = np.full(len(n), np.nan)
    for j in np.flatnonzero(~insufficient):
        edges = profile.fine.edges[j]
        lo = min(profile.minimum[j], sketch.minimum[j])
        hi = max(profile.maximum[j], sketch.maximum[j])
        width = np.diff(np.concatenate([[lo], edges, [hi]]))
        statistic[j], bound[j] = _segment_distance(
            p_ref[j, : edges.size + 1], p_cur[j, : edges.size + 1], width
        )
    if normalized:
        with np.errstate(divide="ignore", invalid="ignore"):
            statistic, bound = statistic / profile.std, bound / profile.std
        flat = profile.std == 0
        statistic[flat] = np.where(sketch.minimum[flat] == profile.minimum[flat], 0.0, np.inf)
        statistic[flat & (sketch.maximum != profile.maximum)] = np.inf
        bound[flat] = 0.0
        statistic[insufficient] = np.nan
        bound[insufficient] = np.nan
    return DriftResult(
        name="wasserstein_normed" if normalized else "wasserstein",
        names=profile.numeric,
        statistic=statistic,
        pvalue=None,
        n_reference=n.copy(),
        n_current=m,
        nulls_reference=profile.nulls.copy(),
        nulls_current=sketch.nulls.copy(),
        insufficient=insufficient,
        error_bound=bound,
        method=("sketch",) * len(n),
    )


def _segment_distance(
    p_ref: NDArray[np.float64], p_cur: NDArray[np.float64], width: NDArray[np.float64]
) -> tuple[float, float]:
    """Midpoint estimate of the integral of |F_ref - F_cur| over the segments, and its bound."""
    ref_mid = np.cumsum(p_ref) - p_ref / 2
    cur_mid = np.cumsum(p_cur) - p_cur / 2
    estimate = float(np.sum(width * np.abs(ref_mid - cur_mid)))
    return estimate, float(np.sum(width * (p_ref + p_cur) / 2))
