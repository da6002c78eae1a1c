"""Regression quality from a mergeable accumulator of error sums: MAE, RMSE and MAPE.

:class:`RegressionAccumulator` keeps five numbers per window (counts and sums), so windows,
partitions and workers merge by addition; :func:`regression_metrics` turns them into
metrics. Summation order differs between one update and merged updates, so merged metrics
equal the metrics of the concatenated data up to floating-point rounding.

>>> acc = RegressionAccumulator.empty().update([1.0, 2.0, 0.0, 4.0], [1.5, 2.0, 1.0, 3.0])
>>> m = regression_metrics(acc)
>>> float(m.mae), float(m.mape), m.n_zero_target
(0.625, 0.25, 1)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from detectors._columns import as_vector
from detectors.errors import DetectorInputError

__all__ = ["RegressionAccumulator", "RegressionMetrics", "regression_metrics"]


@dataclass(frozen=True)
class RegressionAccumulator:
    """Sums of errors over the (target, prediction) pairs seen so far.

    With error ``e_i = y_pred_i - y_true_i`` over the pairs where neither side is ``NaN``:

    Attributes:
        n: pairs used.
        n_dropped: pairs dropped because the target or the prediction was ``NaN``.
        sum_abs_error: ``sum |e_i|``, in target units.
        sum_squared_error: ``sum e_i**2``, in target units squared.
        sum_abs_pct_error: ``sum |e_i| / |y_true_i|`` over pairs with ``y_true_i != 0``
            (a sum of fractions, unitless).
        n_zero_target: pairs with ``y_true_i == 0``, left out of ``sum_abs_pct_error``.

    Instances are immutable: :meth:`update` and :meth:`merge` return new accumulators.

    """

    n: int = 0
    n_dropped: int = 0
    sum_abs_error: float = 0.0
    sum_squared_error: float = 0.0
    sum_abs_pct_error: float = 0.0
    n_zero_target: int = 0

    def __post_init__(self) -> None:
        for name in ("n", "n_dropped", "n_zero_target"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise DetectorInputError(f"{name} must be a non-negative integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("sum_abs_error", "sum_squared_error", "sum_abs_pct_error"):
            value = getattr(self, name)
            if not isinstance(value, int | float | np.number) or not value >= 0:
                raise DetectorInputError(f"{name} must be a number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.n_zero_target > self.n:
            raise DetectorInputError("n_zero_target cannot exceed n")

    @classmethod
    def empty(cls) -> RegressionAccumulator:
        """Return an accumulator that has seen nothing."""
        return cls()

    def update(self, y_true: Any, y_pred: Any) -> RegressionAccumulator:
        """Return this accumulator plus the pairs ``(y_true[i], y_pred[i])``.

        Both inputs are 1-D, non-empty, numeric and of the same length; ``NaN`` on either side
        drops the pair (counted in ``n_dropped``); infinities are refused. Inputs are not
        modified.
        """
        target = as_vector(y_true, "y_true")
        prediction = as_vector(y_pred, "y_pred")
        if target.shape != prediction.shape:
            raise DetectorInputError(
                f"{prediction.shape[0]} predictions for {target.shape[0]} targets",
                column="y_pred",
            )
        keep = ~(np.isnan(target) | np.isnan(prediction))
        target, prediction = target[keep], prediction[keep]
        abs_error = np.abs(prediction - target)
        nonzero = target != 0
        return self.merge(
            RegressionAccumulator(
                n=int(keep.sum()),
                n_dropped=int(keep.size - keep.sum()),
                sum_abs_error=float(abs_error.sum()),
                sum_squared_error=float(np.square(abs_error).sum()),
                sum_abs_pct_error=float((abs_error[nonzero] / np.abs(target[nonzero])).sum()),
                n_zero_target=int(nonzero.size - nonzero.sum()),
            )
        )

    def merge(self, other: RegressionAccumulator) -> RegressionAccumulator:
        """Return the accumulator of both inputs' data."""
        return RegressionAccumulator(
            n=self.n + other.n,
            n_dropped=self.n_dropped + other.n_dropped,
            sum_abs_error=self.sum_abs_error + other.sum_abs_error,
            sum_squared_error=self.sum_squared_error + other.sum_squared_error,
            sum_abs_pct_error=self.sum_abs_pct_error + other.sum_abs_pct_error,
            n_zero_target=self.n_zero_target + other.n_zero_target,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: the six fields by name."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegressionAccumulator:
        """Rebuild from :meth:`to_dict` output; malformed data raises DetectorInputError."""
        fields = set(cls.__dataclass_fields__)
        if not isinstance(data, dict) or set(data) != fields:
            raise DetectorInputError(f"a serialised accumulator has exactly the keys {fields}")
        return cls(**data)


@dataclass(frozen=True)
class RegressionMetrics:
    """Error metrics of the pairs in a :class:`RegressionAccumulator`.

    Attributes:
        n: pairs used (``NaN`` pairs excluded).
        mae: mean absolute error ``sum |e_i| / n``, in target units.
        rmse: root mean squared error ``sqrt(sum e_i**2 / n)``, in target units.
        mape: mean absolute percentage error as a fraction (``0.05`` is 5 %):
            ``sum |e_i| / |y_true_i| / n_mape`` over the ``n_mape`` pairs whose target is
            non-zero. Unlike scikit-learn, zero targets are left out rather than divided by
            machine epsilon.
        n_mape: pairs used for ``mape`` (``n - n_zero_target``).
        n_zero_target: pairs left out of ``mape`` because their target is exactly zero.
        n_dropped: pairs dropped because a side was ``NaN``.
        insufficient: ``n == 0``; ``mae``, ``rmse`` and ``mape`` are then ``NaN``.
        mape_insufficient: ``n_mape == 0`` (no pairs, or every target zero); ``mape`` is
            then ``NaN``.

    """

    n: int
    mae: float
    rmse: float
    mape: float
    n_mape: int
    n_zero_target: int
    n_dropped: int
    insufficient: bool
    mape_insufficient: bool


def regression_metrics(acc: RegressionAccumulator) -> RegressionMetrics:
    """Compute :class:`RegressionMetrics` from an accumulator."""
    n_mape = acc.n - acc.n_zero_target
    nan = float("nan")
    return RegressionMetrics(
        n=acc.n,
        mae=acc.sum_abs_error / acc.n if acc.n else nan,
        rmse=math.sqrt(acc.sum_squared_error / acc.n) if acc.n else nan,
        mape=acc.sum_abs_pct_error / n_mape if n_mape else nan,
        n_mape=n_mape,
        n_zero_target=acc.n_zero_target,
        n_dropped=acc.n_dropped,
        insufficient=acc.n == 0,
        mape_insufficient=n_mape == 0,
    )
