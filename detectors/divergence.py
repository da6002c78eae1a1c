"""Jensen-Shannon distance and Hellinger distance over reference-fitted bins.

Both compare the shares ``p`` (reference) and ``q`` (current) of the values falling in each
bin, with the bins of :func:`detectors.psi.psi` (reference quantiles, fitted once; value
bins for features with few distinct values). Empty bins need no epsilon here.

* Jensen-Shannon distance, base 2, in [0, 1]::

      JS = sqrt( (KL(p || m) + KL(q || m)) / 2 ),  m = (p + q) / 2,  KL(a || b) = sum a ln(a/b)

  divided inside the root by ``ln 2`` so that the base is 2 — the value
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)`` returns.
* Hellinger distance, in [0, 1]::

      H = ||sqrt(p) - sqrt(q)||_2 / sqrt(2)  =  sqrt( 1 - sum_b sqrt(p[b] * q[b]) )

  computed in the first form, which keeps its precision when ``p`` and ``q`` are close.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import special

from detectors._binned import binned_statistic, proportions
from detectors.binning import IntMatrix
from detectors.results import DriftResult


def jensen_shannon_from_counts(reference: IntMatrix, current: IntMatrix) -> NDArray[np.float64]:
    """Jensen-Shannon distance (base 2) per row of two count matrices over the same bins."""
    p = proportions(reference)
    q = proportions(current)
    mid = (p + q) / 2.0
    divergence = (special.rel_entr(p, mid).sum(axis=1) + special.rel_entr(q, mid).sum(axis=1)) / 2
    return np.asarray(np.sqrt(np.maximum(divergence, 0.0) / np.log(2.0)), dtype=np.float64)


def hellinger_from_counts(reference: IntMatrix, current: IntMatrix) -> NDArray[np.float64]:
    """Hellinger distance per row of two count matrices over the same bins."""
    # The norm form has no cancellation: 1 - sum sqrt(pq) loses ~1e-8 when p == q.
    gap = np.sqrt(proportions(reference)) - np.sqrt(proportions(current))
    return np.asarray(np.sqrt((gap * gap).sum(axis=1) / 2.0), dtype=np.float64)


def jensen_shannon(
    reference: Any,
    current: Any,
    bins: int = 10,
    *,
    categorical: bool = False,
    min_samples: int = 1,
    names: Sequence[str] | None = None,
) -> DriftResult:
    """Jensen-Shannon distance per feature over the reference's PSI bins (module docstring)."""
    return binned_statistic(
        "jensen_shannon",
        jensen_shannon_from_counts,
        reference,
        current,
        bins=bins,
        categorical=categorical,
        min_samples=min_samples,
        names=names,
    )


def hellinger(
    reference: Any,
    current: Any,
    bins: int = 10,
    *,
    categorical: bool = False,
    min_samples: int = 1,
    names: Sequence[str] | None = None,
) -> DriftResult:
    """Hellinger distance per feature over the reference's PSI bins (module docstring)."""
    return binned_statistic(
        "hellinger",
        hellinger_from_counts,
        reference,
        current,
        bins=bins,
        categorical=categorical,
        min_samples=min_samples,
        names=names,
    )
