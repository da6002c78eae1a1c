"""A reference sample sorted once per feature, shared by the statistics that need raw order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors._columns import FloatMatrix, as_matrix, check_same_columns, readonly
from detectors.results import insufficient_mask


@dataclass(frozen=True)
class SortedReference:
    """A reference sample prepared once for repeated KS tests: each column sorted.

    Attributes:
        names: feature names.
        values: features x rows, each row sorted ascending with NaNs at the end.
        n: non-missing values per feature.
        nulls: missing values per feature.

    """

    names: tuple[str, ...]
    values: FloatMatrix
    n: NDArray[np.int64]
    nulls: NDArray[np.int64]

    def __post_init__(self) -> None:
        for a in (self.values, self.n, self.nulls):
            readonly(a)

    @classmethod
    def fit(cls, reference: Any, *, names: Sequence[str] | None = None) -> SortedReference:
        """Sort ``reference`` (rows x features) column by column, NaNs last."""
        matrix, labels = as_matrix(reference, names=names, role="reference")
        nulls = np.isnan(matrix).sum(axis=0).astype(np.int64)
        values = np.sort(np.ascontiguousarray(matrix.T), axis=1)
        return cls(labels, values, (matrix.shape[0] - nulls).astype(np.int64), nulls)


@dataclass(frozen=True)
class SortedPair:
    """A prepared reference and a current window sorted the same way, ready to compare.

    Attributes:
        reference: the prepared reference.
        current: features x rows, each row sorted ascending with NaNs at the end.
        m: non-missing current values per feature.
        nulls: missing current values per feature.
        insufficient: features with an empty reference or fewer than ``min_samples``
            current values.

    """

    reference: SortedReference
    current: FloatMatrix
    m: NDArray[np.int64]
    nulls: NDArray[np.int64]
    insufficient: NDArray[np.bool_]

    @classmethod
    def prepare(
        cls,
        reference: Any,
        current: Any,
        *,
        min_samples: int,
        names: Sequence[str] | None = None,
    ) -> SortedPair:
        """Fit ``reference`` unless already prepared, then coerce and sort ``current``."""
        ref = (
            reference
            if isinstance(reference, SortedReference)
            else SortedReference.fit(reference, names=names)
        )
        cur, _ = as_matrix(current, names=ref.names, role="current")
        check_same_columns(ref.names, cur)
        nulls = np.isnan(cur).sum(axis=0).astype(np.int64)
        m = (cur.shape[0] - nulls).astype(np.int64)
        insufficient = insufficient_mask(ref.n, m, min_samples)
        return cls(ref, np.sort(np.ascontiguousarray(cur.T), axis=1), m, nulls, insufficient)
