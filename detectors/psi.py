"""Population Stability Index over reference-fitted bins.

Definition, per feature::

    PSI = sum_b (p_cur[b] - p_ref[b]) * ln(p_cur[b] / p_ref[b])

where ``p_ref[b]`` and ``p_cur[b]`` are the shares of the reference and current values
in bin ``b``, and an empty bin's share (0) is replaced by ``eps = 1e-4`` on either side
(shares are not renormalised afterwards).

Bins are fitted on the reference only: the edges are the reference quantiles at
``i / bins`` for ``i = 1 .. bins - 1`` (numpy's default ``"linear"`` method), duplicate
edges removed, the outer bins open to -inf / +inf, a value on an edge going to the bin
on its right. A feature with no more distinct reference values than ``bins`` is binned
per distinct value plus one overflow bin for values the reference never had. Missing
values are dropped and counted. Common reading: < 0.1 stable, 0.1-0.25 moderate shift,
> 0.25 major shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors._binned import binned_statistic, proportions
from detectors.binning import IntMatrix
from detectors.results import DriftResult

PSI_EPSILON = 1e-4
"""Share used in place of an empty bin's 0, so that the logarithm stays finite."""


def psi_from_counts(reference: IntMatrix, current: IntMatrix) -> NDArray[np.float64]:
    """PSI per row of two count matrices over the same bins (features x bins)."""
    p_ref = proportions(reference)
    p_cur = proportions(current)
    p_ref[p_ref == 0] = PSI_EPSILON
    p_cur[p_cur == 0] = PSI_EPSILON
    return np.asarray(((p_cur - p_ref) * np.log(p_cur / p_ref)).sum(axis=1), dtype=np.float64)


def psi(
    reference: Any,
    current: Any,
    bins: int = 10,
    *,
    categorical: bool = False,
    min_samples: int = 1,
    names: Sequence[str] | None = None,
) -> DriftResult:
    """PSI of every feature of ``current`` against ``reference`` (see the module docstring).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> ref = rng.normal(size=(5000, 2))
        >>> cur = ref + np.array([0.0, 1.0])
        >>> [round(float(v), 2) for v in psi(ref, cur).statistic]
        [0.0, 0.94]

    """
    return binned_statistic(
        "psi",
        psi_from_counts,
        reference,
        current,
        bins=bins,
        categorical=categorical,
        min_samples=min_samples,
        names=names,
    )
