"""Change-point tests over series of per-window values: Page-Hinkley and tabular CUSUM.

Both take a 1-D series or a 2-D array (time x series, one series per column) and run every
series at once: the loop is over time only, since each step depends on the previous one.
``NaN`` means "no value for this window": the series' state is left unchanged and no
detection can happen there. After a detection a series restarts from a fresh state at its
next value. Each returns a frozen dataclass with the detection indices (row numbers in the
input) per series and the statistics after the last value.

>>> import numpy as np
>>> series = np.r_[np.zeros(100), np.full(100, 3.0)]
>>> page_hinkley(series, threshold=20.0).detections[0].tolist()
[106]
>>> upward = cusum(series, target=0.0, sigma=1.0)  # z = 3: C+ = 2.5, 5.0, 7.5 > h
>>> upward.detections[0][:3].tolist()
[102, 105, 108]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from detectors._columns import FloatMatrix, as_matrix, readonly
from detectors.errors import DetectorInputError

__all__ = ["CusumResult", "PageHinkleyResult", "cusum", "page_hinkley"]

Mode = Literal["up", "down", "both"]


def _detections(detected: NDArray[np.bool_]) -> tuple[NDArray[np.int64], ...]:
    return tuple(
        readonly(np.flatnonzero(detected[:, j]).astype(np.int64)) for j in range(detected.shape[1])
    )


def _freeze(*arrays: NDArray[Any]) -> None:
    for array in arrays:
        readonly(array)


@dataclass(frozen=True, eq=False)
class PageHinkleyResult:
    """Detections and final state of :func:`page_hinkley`, one entry per series.

    Attributes:
        names: series names.
        detections: for each series, the row indices where a change was detected.
        n: values seen since the last restart (``NaN`` rows excluded).
        mean: running mean of those values.
        sum_increase, sum_decrease: the cumulative sums ``U_t`` and ``L_t``.
        test_increase, test_decrease: ``U_t - min U`` and ``max L - L_t`` at the last value.
        n_missing: ``NaN`` rows skipped.

    """

    names: tuple[str, ...]
    detections: tuple[NDArray[np.int64], ...]
    n: NDArray[np.int64]
    mean: NDArray[np.float64]
    sum_increase: NDArray[np.float64]
    sum_decrease: NDArray[np.float64]
    test_increase: NDArray[np.float64]
    test_decrease: NDArray[np.float64]
    n_missing: NDArray[np.int64]

    def __post_init__(self) -> None:
        _freeze(
            self.n,
            self.mean,
            self.sum_increase,
            self.sum_decrease,
            self.test_increase,
            self.test_decrease,
            self.n_missing,
        )


def page_hinkley(
    series: Any,
    *,
    min_instances: int = 30,
    delta: float = 0.005,
    threshold: float = 50.0,
    alpha: float = 1 - 0.0001,
    mode: Mode = "both",
    names: Sequence[str] | None = None,
) -> PageHinkleyResult:
    """Run the Page-Hinkley test on each series; same detections as River's ``PageHinkley``.

    For each value ``x_t`` of a series (``NaN`` skipped), with ``n`` values since the last
    restart and ``mean_t`` their running mean (``mean_t = mean_{t-1} + (x_t - mean_{t-1}) / n``):

    * ``U_t = alpha * U_{t-1} + (x_t - mean_t) - delta`` (starting at 0), ``m_t = min(U)``
      (starting at ``+inf``);
    * ``L_t = alpha * L_{t-1} + (x_t - mean_t) + delta`` (starting at 0), ``M_t = max(L)``
      (starting at ``-1``, as in River);
    * once ``n >= min_instances``, a change is detected at ``t`` when
      ``U_t - m_t > threshold`` (mode ``"up"``: the mean rose), ``M_t - L_t > threshold``
      (``"down"``: it fell), or either (``"both"``);
    * after a detection, the state restarts before the series' next value.

    ``threshold`` and ``delta`` are in the series' units; ``alpha`` in ``(0, 1]`` fades the
    sums (1 means no fading). River's ``river.drift.PageHinkley`` fed the non-``NaN`` values
    of a series one by one flags exactly the same values.
    """
    if mode not in ("up", "down", "both"):
        raise ValueError(f"mode must be 'up', 'down' or 'both', got {mode!r}")
    if min_instances < 1 or delta < 0 or threshold < 0 or not 0 < alpha <= 1:
        raise ValueError("need min_instances >= 1, delta >= 0, threshold >= 0, 0 < alpha <= 1")
    X, labels = as_matrix(series, names=names, role="series")
    k = X.shape[1]
    n = np.zeros(k)
    mean = np.zeros(k)
    upper, lower = np.zeros(k), np.zeros(k)
    low_min, high_max = np.full(k, np.inf), np.full(k, -1.0)
    test_up, test_down = np.zeros(k), np.zeros(k)
    pending = np.zeros(k, dtype=bool)
    detected = np.zeros(X.shape, dtype=bool)
    for t in range(X.shape[0]):
        x = X[t]
        valid = ~np.isnan(x)
        restart = pending & valid
        if restart.any():
            for state, fresh in ((n, 0.0), (mean, 0.0), (upper, 0.0), (lower, 0.0)):
                state[restart] = fresh
            low_min[restart], high_max[restart] = np.inf, -1.0
            test_up[restart] = test_down[restart] = 0.0
            pending &= ~restart
        # The exact operation order of River's Mean and PageHinkley, for identical floats.
        n = np.where(valid, n + 1.0, n)
        mean = np.where(valid, mean + (1.0 / np.maximum(n, 1.0)) * (x - mean), mean)
        dev = x - mean
        upper = np.where(valid, alpha * upper + dev - delta, upper)
        lower = np.where(valid, alpha * lower + dev + delta, lower)
        low_min = np.minimum(low_min, upper)
        high_max = np.maximum(high_max, lower)
        ready = valid & (n >= min_instances)
        test_up = np.where(ready, upper - low_min, test_up)
        test_down = np.where(ready, high_max - lower, test_down)
        up, down = test_up > threshold, test_down > threshold
        hit = ready & (up if mode == "up" else down if mode == "down" else up | down)
        detected[t] = hit
        pending |= hit
    return PageHinkleyResult(
        names=labels,
        detections=_detections(detected),
        n=n.astype(np.int64),
        mean=mean,
        sum_increase=upper,
        sum_decrease=lower,
        test_increase=test_up,
        test_decrease=test_down,
        n_missing=np.isnan(X).sum(axis=0).astype(np.int64),
    )


@dataclass(frozen=True, eq=False)
class CusumResult:
    """Detections and final state of :func:`cusum`, one entry per series.

    Attributes:
        names: series names.
        detections: for each series, the row indices where a change was detected.
        upper, lower: ``C+`` and ``C-`` after the last value, in units of ``sigma``.
        target, sigma: the in-control mean and standard deviation used (series units).
        insufficient: no usable ``sigma`` (fewer than two warm-up values, or zero spread):
            no detections, statistics ``NaN``.
        n_missing: ``NaN`` rows skipped.

    """

    names: tuple[str, ...]
    detections: tuple[NDArray[np.int64], ...]
    upper: NDArray[np.float64]
    lower: NDArray[np.float64]
    target: NDArray[np.float64]
    sigma: NDArray[np.float64]
    insufficient: NDArray[np.bool_]
    n_missing: NDArray[np.int64]

    def __post_init__(self) -> None:
        _freeze(self.upper, self.lower, self.target, self.sigma, self.insufficient, self.n_missing)


def _per_series(value: float | Sequence[float] | NDArray[Any], k: int, name: str) -> FloatMatrix:
    try:
        array = np.broadcast_to(np.asarray(value, dtype=np.float64), (k,)).copy()
    except (TypeError, ValueError):
        raise DetectorInputError(f"must be a number or {k} numbers", column=name) from None
    if not np.isfinite(array).all():
        raise DetectorInputError("must be finite", column=name)
    return array


def _warmup_moments(X: FloatMatrix, warmup: int) -> tuple[FloatMatrix, FloatMatrix]:
    """Mean and sample standard deviation (ddof 1) of each series' first ``warmup`` values."""
    valid = ~np.isnan(X)
    used = valid & (np.cumsum(valid, axis=0) <= warmup)
    count = used.sum(axis=0)
    values = np.where(used, X, 0.0)
    mean = np.full(X.shape[1], np.nan)
    np.divide(values.sum(axis=0), count, out=mean, where=count > 0)
    squares = np.where(used, (values - mean) ** 2, 0.0)
    sigma = np.full(X.shape[1], np.nan)
    np.sqrt(squares.sum(axis=0) / np.maximum(count - 1, 1), out=sigma, where=count > 1)
    return mean, sigma


def cusum(
    series: Any,
    *,
    target: float | Sequence[float] | NDArray[Any] | None = None,
    sigma: float | Sequence[float] | NDArray[Any] | None = None,
    k: float = 0.5,
    h: float = 5.0,
    warmup: int = 30,
    names: Sequence[str] | None = None,
) -> CusumResult:
    """Run a two-sided tabular CUSUM on each series (Page 1954; Montgomery, SQC, ch. 9).

    For each value ``x_t`` of a series (``NaN`` skipped), with ``z_t = (x_t - target) / sigma``:

    * ``C+_t = max(0, C+_{t-1} + z_t - k)`` and ``C-_t = max(0, C-_{t-1} - z_t - k)``,
      both starting at 0;
    * a change is detected at ``t`` when ``C+_t > h`` (the mean rose) or ``C-_t > h`` (fell);
    * after a detection both sums restart at 0 before the series' next value.

    ``k`` (allowance) and ``h`` (decision interval) are in units of ``sigma``: ``k = 0.5``
    targets a shift of one ``sigma``. ``target`` and ``sigma`` are scalars or one value per
    series; when not given, they are the mean and the sample standard deviation (``ddof=1``)
    of the series' first ``warmup`` non-``NaN`` values, which are monitored too. A series
    whose ``sigma`` cannot be estimated (fewer than two values, or all equal) is marked
    ``insufficient`` and never detects.
    """
    if k < 0 or h <= 0 or warmup < 2:
        raise ValueError("need k >= 0, h > 0 and warmup >= 2")
    X, labels = as_matrix(series, names=names, role="series")
    count = X.shape[1]
    mean, spread = _warmup_moments(X, warmup)
    centre = mean if target is None else _per_series(target, count, "target")
    scale = spread if sigma is None else _per_series(sigma, count, "sigma")
    if sigma is not None and (scale <= 0).any():
        raise DetectorInputError("must be > 0", column="sigma")
    insufficient = ~(scale > 0) | np.isnan(centre)
    upper, lower = np.zeros(count), np.zeros(count)
    detected = np.zeros(X.shape, dtype=bool)
    pending = np.zeros(count, dtype=bool)
    safe_scale = np.where(insufficient, 1.0, scale)
    safe_centre = np.where(insufficient, 0.0, centre)
    for t in range(X.shape[0]):
        z = (X[t] - safe_centre) / safe_scale
        valid = ~np.isnan(z) & ~insufficient
        restart = pending & valid
        upper[restart] = lower[restart] = 0.0
        pending &= ~restart
        upper = np.where(valid, np.maximum(0.0, upper + z - k), upper)
        lower = np.where(valid, np.maximum(0.0, lower - z - k), lower)
        hit = valid & ((upper > h) | (lower > h))
        detected[t] = hit
        pending |= hit
    upper[insufficient] = lower[insufficient] = np.nan
    return CusumResult(
        names=labels,
        detections=_detections(detected),
        upper=upper,
        lower=lower,
        target=centre,
        sigma=scale,
        insufficient=insufficient,
        n_missing=np.isnan(X).sum(axis=0).astype(np.int64),
    )
