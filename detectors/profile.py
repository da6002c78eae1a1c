"""The reference profile: everything a window is compared against, fitted once.

Per numeric feature: coarse bins (for PSI, Jensen-Shannon, Hellinger: reference quantiles
at ``i / coarse_bins``, value bins for features with few distinct values, see
:mod:`detectors.binning`), fine bins (reference quantiles at ``i / fine_bins``, interval
bins always; for the sketch KS and Wasserstein estimates), the reference counts over both,
the non-missing and missing counts, mean, population standard deviation, minimum and
maximum. Per categorical feature: the vocabulary (sorted category strings) with counts,
and the missing count.

A profile serialises to plain JSON-able data (:meth:`ReferenceProfile.to_dict`) carrying
``PROFILE_VERSION``; loading data of another version is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from detectors._columns import FloatMatrix, as_matrix, readonly
from detectors.binning import Binning, IntMatrix, fit_binnings, nested_map
from detectors.categorical import as_category_columns, stack_padded, value_counts
from detectors.errors import DetectorInputError

PROFILE_VERSION = 1


@dataclass(frozen=True)
class ReferenceProfile:
    """A reference dataset summarised for drift detection (see the module docstring).

    Numeric arrays are indexed by numeric feature (``numeric[j]``); categorical ones by
    categorical feature (``categorical[j]``).
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    coarse_bins: int
    fine_bins: int
    coarse: Binning
    fine: Binning
    coarse_counts: IntMatrix
    fine_counts: IntMatrix
    n: NDArray[np.int64]
    nulls: NDArray[np.int64]
    mean: NDArray[np.float64]
    std: NDArray[np.float64]
    minimum: NDArray[np.float64]
    maximum: NDArray[np.float64]
    vocabulary: tuple[tuple[str, ...], ...]
    category_counts: IntMatrix
    category_nulls: NDArray[np.int64]

    def __post_init__(self) -> None:
        for value in (
            self.coarse_counts,
            self.fine_counts,
            self.n,
            self.nulls,
            self.mean,
            self.std,
            self.minimum,
            self.maximum,
            self.category_counts,
            self.category_nulls,
        ):
            readonly(value)

    @cached_property
    def coarse_from_fine(self) -> NDArray[np.int64] | None:
        """Flat fine-to-coarse bin map when the bins nest (see :func:`binning.nested_map`)."""
        return nested_map(self.coarse, self.fine) if self.numeric else None

    @classmethod
    def fit(
        cls,
        data: Any,
        *,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        coarse_bins: int = 10,
        fine_bins: int = 1000,
    ) -> ReferenceProfile:
        """Fit a profile on a reference dataset.

        Args:
            data: a polars DataFrame, a mapping of column name to 1-D values, or a 2-D
                numeric array (then ``numeric`` names its columns).
            numeric: numeric feature names. For a DataFrame or mapping without ``numeric``
                and ``categorical``, numeric dtypes are numeric and everything else
                (strings, booleans, categoricals) is categorical.
            categorical: categorical feature names.
            coarse_bins: bins for PSI / Jensen-Shannon / Hellinger.
            fine_bins: bins for the sketch KS and Wasserstein estimates; 1000 bounds the
                KS sketch error by about 1/1000 plus the current window's largest bin share.

        """
        frame = _as_frame(data, numeric)
        numeric_names, categorical_names = _split_columns(frame, numeric, categorical)
        if not numeric_names and not categorical_names:
            raise DetectorInputError("the reference has no features")
        if frame.height == 0:
            raise DetectorInputError("the reference is empty (0 rows)")
        matrix = _numeric_matrix(frame, numeric_names)
        [(coarse, coarse_counts), (fine, fine_counts)], nulls = fit_binnings(
            matrix, ((coarse_bins, coarse_bins), (fine_bins, None))
        )
        vocabulary, counts, category_nulls = _fit_categories(frame, categorical_names)
        return cls(
            numeric=numeric_names,
            categorical=categorical_names,
            coarse_bins=coarse_bins,
            fine_bins=fine_bins,
            coarse=coarse,
            fine=fine,
            coarse_counts=coarse_counts,
            fine_counts=fine_counts,
            n=(matrix.shape[0] - nulls).astype(np.int64),
            nulls=nulls,
            mean=_nan_stat(np.nanmean, matrix),
            std=_nan_stat(np.nanstd, matrix),
            minimum=_nan_stat(np.nanmin, matrix),
            maximum=_nan_stat(np.nanmax, matrix),
            vocabulary=vocabulary,
            category_counts=counts,
            category_nulls=category_nulls,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (lists, numbers, strings; NaN as ``None``), with a version."""

        def floats(a: NDArray[np.float64]) -> list[float | None]:
            return [None if np.isnan(v) else float(v) for v in a]

        return {
            "version": PROFILE_VERSION,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "coarse_bins": self.coarse_bins,
            "fine_bins": self.fine_bins,
            "coarse": self.coarse.to_dict(),
            "fine": self.fine.to_dict(),
            "coarse_counts": [row[: len(e) + 1].tolist() for row, e in self._rows("coarse")],
            "fine_counts": [row[: len(e) + 1].tolist() for row, e in self._rows("fine")],
            "n": self.n.tolist(),
            "nulls": self.nulls.tolist(),
            "mean": floats(self.mean),
            "std": floats(self.std),
            "minimum": floats(self.minimum),
            "maximum": floats(self.maximum),
            "vocabulary": [list(v) for v in self.vocabulary],
            "category_counts": [
                row[: len(v)].tolist()
                for row, v in zip(self.category_counts, self.vocabulary, strict=True)
            ],
            "category_nulls": self.category_nulls.tolist(),
        }

    def select(self, numeric: Sequence[str], categorical: Sequence[str]) -> ReferenceProfile:
        """The profile of some of its features, in the order given (bins and counts as fitted).

        Raises :class:`DetectorInputError` naming a feature the profile does not have.
        """
        numeric, categorical = tuple(numeric), tuple(categorical)
        if numeric == self.numeric and categorical == self.categorical:
            return self
        for names, known in ((numeric, self.numeric), (categorical, self.categorical)):
            for name in names:
                if name not in known:
                    raise DetectorInputError("feature not in the reference profile", column=name)
        data = self.to_dict()
        picked_numeric = [self.numeric.index(f) for f in numeric]
        picked_categorical = [self.categorical.index(f) for f in categorical]

        def pick(values: list[Any], rows: list[int]) -> list[Any]:
            return [values[i] for i in rows]

        for key in ("coarse_counts", "fine_counts", "n", "nulls", "mean", "std", "minimum",
                    "maximum"):  # fmt: skip
            data[key] = pick(data[key], picked_numeric)
        for key in ("coarse", "fine"):
            data[key] = {k: pick(v, picked_numeric) for k, v in data[key].items()}
        for key in ("vocabulary", "category_counts", "category_nulls"):
            data[key] = pick(data[key], picked_categorical)
        data["numeric"], data["categorical"] = list(numeric), list(categorical)
        return ReferenceProfile.from_dict(data)

    def _rows(self, which: str) -> list[tuple[NDArray[np.int64], NDArray[np.float64]]]:
        counts, binning = (
            (self.coarse_counts, self.coarse)
            if which == "coarse"
            else (self.fine_counts, self.fine)
        )
        return list(zip(counts, binning.edges, strict=True))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Rebuild a profile from :meth:`to_dict` output; refuses another version."""
        version = data.get("version")
        if version != PROFILE_VERSION:
            raise DetectorInputError(
                f"profile version {version!r} is not supported (expected {PROFILE_VERSION})"
            )

        def floats(values: Sequence[float | None]) -> NDArray[np.float64]:
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

        def ints(rows: Sequence[Sequence[int]]) -> IntMatrix:
            return stack_padded([np.asarray(r, dtype=np.int64) for r in rows])

        return cls(
            numeric=tuple(data["numeric"]),
            categorical=tuple(data["categorical"]),
            coarse_bins=int(data["coarse_bins"]),
            fine_bins=int(data["fine_bins"]),
            coarse=Binning.from_dict(data["coarse"]),
            fine=Binning.from_dict(data["fine"]),
            coarse_counts=ints(data["coarse_counts"]),
            fine_counts=ints(data["fine_counts"]),
            n=np.asarray(data["n"], dtype=np.int64),
            nulls=np.asarray(data["nulls"], dtype=np.int64),
            mean=floats(data["mean"]),
            std=floats(data["std"]),
            minimum=floats(data["minimum"]),
            maximum=floats(data["maximum"]),
            vocabulary=tuple(tuple(v) for v in data["vocabulary"]),
            category_counts=ints(data["category_counts"]),
            category_nulls=np.asarray(data["category_nulls"], dtype=np.int64),
        )


def _as_frame(data: Any, numeric: Sequence[str] | None) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pl.DataFrame({str(k): np.asarray(v) for k, v in data.items()}, strict=False)
    matrix, names = as_matrix(data, names=numeric, role="reference")
    return pl.DataFrame(dict(zip(names, matrix.T, strict=True)))


def _split_columns(
    frame: pl.DataFrame, numeric: Sequence[str] | None, categorical: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if numeric is None and categorical is None:
        numeric = [c for c, t in frame.schema.items() if t.is_numeric()]
        categorical = [c for c in frame.columns if c not in numeric]
    numeric_names, categorical_names = tuple(numeric or ()), tuple(categorical or ())
    missing = [c for c in numeric_names + categorical_names if c not in frame.columns]
    if missing:
        raise DetectorInputError("column not in the data", column=missing[0])
    both = set(numeric_names) & set(categorical_names)
    if both:
        raise DetectorInputError("named both numeric and categorical", column=sorted(both)[0])
    return numeric_names, categorical_names


def numeric_frame_matrix(frame: pl.DataFrame, names: Sequence[str]) -> FloatMatrix:
    """The named numeric columns of ``frame`` as a float matrix (nulls as NaN)."""
    return _numeric_matrix(frame, tuple(names))


def _numeric_matrix(frame: pl.DataFrame, names: tuple[str, ...]) -> FloatMatrix:
    if not names:
        return np.empty((frame.height, 0))
    matrix, _ = as_matrix(frame.select(names), role="data")
    return matrix


def _nan_stat(function: Any, matrix: FloatMatrix) -> NDArray[np.float64]:
    if matrix.shape[1] == 0:
        return np.empty(0)
    out = np.full(matrix.shape[1], np.nan)
    present = ~np.isnan(matrix).all(axis=0)
    if present.any():
        out[present] = function(matrix[:, present], axis=0)
    return out


def _fit_categories(
    frame: pl.DataFrame, names: tuple[str, ...]
) -> tuple[tuple[tuple[str, ...], ...], IntMatrix, NDArray[np.int64]]:
    if not names:
        return (), np.zeros((0, 1), dtype=np.int64), np.zeros(0, dtype=np.int64)
    columns, _ = as_category_columns(frame.select(names), role="reference")
    vocabulary, rows, nulls = [], [], []
    for column in columns:
        counts, null = value_counts(column)
        keys = tuple(sorted(counts))
        vocabulary.append(keys)
        rows.append(np.array([counts[k] for k in keys], dtype=np.int64))
        nulls.append(null)
    return tuple(vocabulary), stack_padded(rows), np.array(nulls, dtype=np.int64)
