"""The typed result every drift statistic returns: one frozen dataclass of per-feature arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors._columns import readonly


@dataclass(frozen=True)
class DriftResult:
    """Per-feature values of one drift statistic (index ``j`` is feature ``names[j]``).

    Attributes:
        name: the statistic's registry name (``"ks"``, ``"psi"`` ...).
        names: feature names.
        statistic: the statistic per feature. ``NaN`` only where ``insufficient`` is set.
        pvalue: the p-value per feature for statistics that are tests, else ``None``.
            ``NaN`` only where ``insufficient`` is set.
        n_reference, n_current: non-missing values used per feature.
        nulls_reference, nulls_current: missing values (``NaN``/null) dropped per feature.
        insufficient: ``True`` where a side had fewer than the required values; the
            statistic and p-value there are ``NaN`` instead of a noisy number.
        error_bound: for sketch-based estimates, the largest possible absolute difference
            between ``statistic`` and the exact value on the raw data; ``None`` when exact.
        method: how the p-value (or estimate) was obtained, e.g. ``"exact"`` or ``"asymp"``,
            per feature.

    """

    name: str
    names: tuple[str, ...]
    statistic: NDArray[np.float64]
    pvalue: NDArray[np.float64] | None
    n_reference: NDArray[np.int64]
    n_current: NDArray[np.int64]
    nulls_reference: NDArray[np.int64]
    nulls_current: NDArray[np.int64]
    insufficient: NDArray[np.bool_]
    error_bound: NDArray[np.float64] | None = None
    method: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for value in (
            self.statistic,
            self.pvalue,
            self.n_reference,
            self.n_current,
            self.nulls_reference,
            self.nulls_current,
            self.insufficient,
            self.error_bound,
        ):
            if value is not None:
                readonly(value)

    def __len__(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form: lists of floats (``None`` for NaN) keyed by field."""

        def floats(a: NDArray[np.float64] | None) -> list[float | None] | None:
            if a is None:
                return None
            return [None if np.isnan(v) else float(v) for v in a]

        return {
            "name": self.name,
            "names": list(self.names),
            "statistic": floats(self.statistic),
            "pvalue": floats(self.pvalue),
            "n_reference": self.n_reference.tolist(),
            "n_current": self.n_current.tolist(),
            "nulls_reference": self.nulls_reference.tolist(),
            "nulls_current": self.nulls_current.tolist(),
            "insufficient": self.insufficient.tolist(),
            "error_bound": floats(self.error_bound),
            "method": list(self.method),
        }


def insufficient_mask(
    n_reference: NDArray[np.int64], n_current: NDArray[np.int64], min_samples: int
) -> NDArray[np.bool_]:
    """Features where the reference is empty or the current side has < ``min_samples`` values."""
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples}")
    return (n_reference < 1) | (n_current < min_samples)
