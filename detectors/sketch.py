"""Window sketches: a window's values counted over a profile's bins, mergeable.

A :class:`WindowSketch` holds, per numeric feature, counts over the profile's coarse and fine
bins, the missing count, and the sum, sum of squares, minimum and maximum; per categorical
feature, counts over the profile's vocabulary plus counts of categories the reference never
had (each kept by name, up to ``MAX_UNSEEN`` per feature; past that they are pooled under
``OTHER_CATEGORY`` and ``unseen_overflow`` says so). Memory is O(features x bins), whatever
the number of rows; ``merge`` adds counts, so windows roll up and workers can be split.

Statistics from a sketch are in :mod:`detectors.sketch_stats`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from detectors._columns import FloatMatrix, as_vector
from detectors.binning import IntMatrix, bin_counts
from detectors.categorical import CategoryCodes, as_category_columns, value_counts
from detectors.errors import DetectorInputError
from detectors.profile import ReferenceProfile, numeric_frame_matrix

MAX_UNSEEN = 1000
"""Distinct unseen categories tracked by name per categorical feature."""
OTHER_CATEGORY = "__other__"
"""The pooled name of unseen categories past ``MAX_UNSEEN``."""


def _category_counts(values: Any, name: str) -> tuple[dict[str, int], int]:
    """Count per category of one column, and its missing values.

    Text and ``None`` only (what the engine decodes) are counted as they are, in one C-level
    pass; :class:`CategoryCodes` (decoded from Arrow dictionaries) by one ``bincount`` of
    their codes; any other column goes through :func:`as_category_columns` for its
    coercions (numbers and booleans as text, NaN missing).
    """
    if isinstance(values, CategoryCodes):
        return values.counts()
    listed = np.asarray(values, dtype=object).tolist()
    if set(map(type, listed)) <= {str, type(None)}:
        counts: dict[str | None, int] = Counter(listed)
        null = counts.pop(None, 0)
        return {str(k): v for k, v in counts.items()}, null
    series = as_category_columns(np.asarray(values, dtype=object), names=[name], role="batch")[0]
    return value_counts(series[0])


@dataclass
class WindowSketch:
    """Counts of one window over a :class:`ReferenceProfile`'s bins (module docstring).

    Create with :meth:`empty`, then :meth:`update` with batches of rows.
    """

    profile: ReferenceProfile
    coarse_counts: IntMatrix
    fine_counts: IntMatrix
    nulls: NDArray[np.int64]
    total: NDArray[np.float64]
    total_squares: NDArray[np.float64]
    minimum: NDArray[np.float64]
    maximum: NDArray[np.float64]
    category_counts: IntMatrix
    category_nulls: NDArray[np.int64]
    unseen: list[dict[str, int]] = field(default_factory=list)
    unseen_overflow: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @classmethod
    def empty(cls, profile: ReferenceProfile) -> WindowSketch:
        """A sketch of no rows over ``profile``'s bins."""
        k, c = len(profile.numeric), len(profile.categorical)
        return cls(
            profile=profile,
            coarse_counts=np.zeros_like(profile.coarse_counts),
            fine_counts=np.zeros_like(profile.fine_counts),
            nulls=np.zeros(k, dtype=np.int64),
            total=np.zeros(k),
            total_squares=np.zeros(k),
            minimum=np.full(k, np.inf),
            maximum=np.full(k, -np.inf),
            category_counts=np.zeros_like(profile.category_counts),
            category_nulls=np.zeros(c, dtype=np.int64),
            unseen=[{} for _ in range(c)],
            unseen_overflow=np.zeros(c, dtype=bool),
        )

    @property
    def n(self) -> NDArray[np.int64]:
        """Non-missing values counted per numeric feature."""
        return np.asarray(self.fine_counts.sum(axis=1), dtype=np.int64)

    @property
    def rows(self) -> int:
        """Rows counted (numeric values plus missing ones, of any feature)."""
        if len(self.profile.numeric):
            return int(self.fine_counts[0].sum() + self.nulls[0])
        if len(self.profile.categorical):
            return int(
                self.category_counts[0].sum()
                + sum(self.unseen[0].values())
                + self.category_nulls[0]
            )
        return 0

    def update(self, batch: Any) -> WindowSketch:
        """Count a batch of rows into this sketch (in place) and return the sketch.

        ``batch`` is a polars DataFrame or a mapping of column name to 1-D values holding
        every feature of the profile (other columns are ignored). Numeric features are
        binned for all features at once; infinite or non-numeric values are refused with
        the column named, and nothing is counted from a refused batch.
        """
        matrix, categories = self._columns(batch)
        if matrix.shape[0] == 0:
            return self
        if matrix.shape[1]:
            fine, nulls = bin_counts(matrix, self.profile.fine)
            self.fine_counts += fine
            self.coarse_counts += self._coarse(matrix, fine)
            self.nulls += nulls
            columns = np.ascontiguousarray(matrix.T)
            if nulls.any():
                columns = np.where(np.isnan(columns), 0.0, columns)
            self.total += columns.sum(axis=1)
            self.total_squares += np.einsum("ij,ij->i", columns, columns)
            self.minimum = np.fmin(self.minimum, np.nanmin(matrix, axis=0, initial=np.inf))
            self.maximum = np.fmax(self.maximum, np.nanmax(matrix, axis=0, initial=-np.inf))
        for j, (counts, null) in enumerate(categories):
            self._count_categories(j, counts, null)
        return self

    def _columns(self, batch: Any) -> tuple[FloatMatrix, list[tuple[dict[str, int], int]]]:
        """The batch's numeric features (rows x features) and categorical ones' counts.

        A mapping of numpy columns is read without a round trip through a DataFrame: the
        numeric columns are stacked feature-major, so the matrix handed back is a free view.
        Categorical columns come back counted: ``(count per category, missing values)``.
        """
        numeric, categorical = self.profile.numeric, self.profile.categorical
        if isinstance(batch, pl.DataFrame):
            missing = [c for c in (*numeric, *categorical) if c not in batch.columns]
            if missing:
                raise DetectorInputError("feature missing from the batch", column=missing[0])
            if batch.height == 0:
                return np.empty((0, len(numeric))), []
            matrix = numeric_frame_matrix(batch, numeric)
            columns, _ = (
                as_category_columns(batch.select(categorical), role="batch")
                if categorical
                else ([], ())
            )
            return matrix, [value_counts(c) for c in columns]
        if not isinstance(batch, Mapping):
            raise DetectorInputError("a batch is a polars DataFrame or a mapping of columns")
        missing = [c for c in (*numeric, *categorical) if c not in batch]
        if missing:
            raise DetectorInputError("feature missing from the batch", column=missing[0])
        lengths = {len(batch[c]) for c in (*numeric, *categorical)}
        if len(lengths) > 1:
            raise DetectorInputError(f"batch columns differ in length: {sorted(lengths)}")
        rows = lengths.pop() if lengths else 0
        stacked = np.empty((len(numeric), rows))
        for j, name in enumerate(numeric):
            values = np.asarray(batch[name])
            stacked[j] = values if values.dtype.kind in "biuf" else as_vector(values, name)
        infinite = np.isinf(stacked)
        if infinite.any():
            bad = numeric[int(np.argmax(infinite.any(axis=1)))]
            raise DetectorInputError("batch contains an infinite value", column=bad)
        if rows == 0:
            return stacked.T, []
        return stacked.T, [_category_counts(batch[name], name) for name in categorical]

    def _coarse(self, matrix: FloatMatrix, fine: IntMatrix) -> IntMatrix:
        """Coarse counts: summed from the fine counts when the bins nest, else binned."""
        mapping = self.profile.coarse_from_fine
        if mapping is None:
            return bin_counts(matrix, self.profile.coarse)[0]
        shape = self.coarse_counts.shape
        summed = np.bincount(mapping, weights=fine.ravel(), minlength=shape[0] * shape[1] + 1)
        return summed[:-1].astype(np.int64).reshape(shape)

    def _count_categories(self, j: int, counts: Mapping[str, int], null: int) -> None:
        index = {c: i for i, c in enumerate(self.profile.vocabulary[j])}
        self.category_nulls[j] += null
        for category, count in counts.items():
            position = index.get(category)
            if position is not None:
                self.category_counts[j, position] += count
                continue
            unseen = self.unseen[j]
            if category not in unseen and len(unseen) >= MAX_UNSEEN:
                category = OTHER_CATEGORY
                self.unseen_overflow[j] = True
            unseen[category] = unseen.get(category, 0) + count

    def merge(self, other: WindowSketch) -> WindowSketch:
        """A new sketch counting both sketches' rows; both must share one profile."""
        same = other.profile is self.profile or other.profile.to_dict() == self.profile.to_dict()
        if not same:
            raise DetectorInputError("cannot merge sketches of different profiles")
        merged = WindowSketch(
            profile=self.profile,
            coarse_counts=self.coarse_counts + other.coarse_counts,
            fine_counts=self.fine_counts + other.fine_counts,
            nulls=self.nulls + other.nulls,
            total=self.total + other.total,
            total_squares=self.total_squares + other.total_squares,
            minimum=np.fmin(self.minimum, other.minimum),
            maximum=np.fmax(self.maximum, other.maximum),
            category_counts=self.category_counts + other.category_counts,
            category_nulls=self.category_nulls + other.category_nulls,
            unseen=[dict(u) for u in self.unseen],
            unseen_overflow=self.unseen_overflow | other.unseen_overflow,
        )
        for j, extra in enumerate(other.unseen):
            merged._count_categories(j, extra, 0)
        return merged

    def mean(self) -> NDArray[np.float64]:
        """Mean per numeric feature (NaN where the window has no value)."""
        n = self.n.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(np.where(n > 0, self.total / n, np.nan), dtype=np.float64)

    def std(self) -> NDArray[np.float64]:
        """Population standard deviation per numeric feature, from the sums (NaN when empty)."""
        n = self.n.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = self.total_squares / n - (self.total / n) ** 2
        return np.asarray(np.where(n > 0, np.sqrt(np.maximum(variance, 0.0)), np.nan))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the profile is not included: store it once, apart)."""
        return {
            "coarse_counts": self.coarse_counts.tolist(),
            "fine_counts": self.fine_counts.tolist(),
            "nulls": self.nulls.tolist(),
            "total": self.total.tolist(),
            "total_squares": self.total_squares.tolist(),
            "minimum": [None if np.isinf(v) else float(v) for v in self.minimum],
            "maximum": [None if np.isinf(v) else float(v) for v in self.maximum],
            "category_counts": self.category_counts.tolist(),
            "category_nulls": self.category_nulls.tolist(),
            "unseen": [dict(u) for u in self.unseen],
            "unseen_overflow": self.unseen_overflow.tolist(),
        }

    @classmethod
    def from_dict(cls, profile: ReferenceProfile, data: Mapping[str, Any]) -> WindowSketch:
        """Rebuild a sketch saved by :meth:`to_dict` over the same ``profile``."""
        sketch = cls(
            profile=profile,
            coarse_counts=np.asarray(data["coarse_counts"], dtype=np.int64).reshape(
                profile.coarse_counts.shape
            ),
            fine_counts=np.asarray(data["fine_counts"], dtype=np.int64).reshape(
                profile.fine_counts.shape
            ),
            nulls=np.asarray(data["nulls"], dtype=np.int64),
            total=np.asarray(data["total"], dtype=np.float64),
            total_squares=np.asarray(data["total_squares"], dtype=np.float64),
            minimum=np.array([np.inf if v is None else v for v in data["minimum"]], dtype=float),
            maximum=np.array([-np.inf if v is None else v for v in data["maximum"]], dtype=float),
            category_counts=np.asarray(data["category_counts"], dtype=np.int64).reshape(
                profile.category_counts.shape
            ),
            category_nulls=np.asarray(data["category_nulls"], dtype=np.int64),
            unseen=[{str(k): int(v) for k, v in u.items()} for u in data["unseen"]],
            unseen_overflow=np.asarray(data["unseen_overflow"], dtype=bool),
        )
        if sketch.nulls.shape != (len(profile.numeric),):
            raise DetectorInputError("the sketch does not match the profile's features")
        return sketch
