"""Every drift statistic by name, with the feature types it accepts and its default threshold.

The engine and the control plane refer to statistics by these names (monitors list them);
``batch`` runs on raw reference and current values, ``sketch`` on a
:class:`~detectors.sketch.WindowSketch`. Thresholds: for tests the default ``alpha``, for
distances the value at or above which a feature counts as drifted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from detectors.chi2 import chi2
from detectors.divergence import hellinger, jensen_shannon
from detectors.errors import DetectorInputError
from detectors.ks import ks_2samp
from detectors.psi import psi
from detectors.results import DriftResult
from detectors.sketch import WindowSketch
from detectors.sketch_stats import (
    sketch_chi2,
    sketch_hellinger,
    sketch_jensen_shannon,
    sketch_ks,
    sketch_psi,
    sketch_wasserstein,
)
from detectors.wasserstein import wasserstein

FeatureType = Literal["numeric", "categorical"]
BatchFunction = Callable[..., DriftResult]


@dataclass(frozen=True)
class StatisticSpec:
    """A registered statistic.

    Attributes:
        name: registry name, also the ``name`` of the results it returns.
        summary: one line for people.
        feature_types: ``"numeric"`` and/or ``"categorical"``.
        is_test: ``True`` when it has p-values (threshold is alpha), else a distance.
        default_threshold: alpha for tests; drift threshold for distances.
        batch: ``batch(reference, current, *, categorical, min_samples, names)``.
        sketch: ``sketch(window_sketch, *, categorical, min_samples)``.

    """

    name: str
    summary: str
    feature_types: frozenset[FeatureType]
    is_test: bool
    default_threshold: float
    batch: BatchFunction
    sketch: Callable[..., DriftResult]


def _numeric_only(function: Callable[..., DriftResult]) -> BatchFunction:
    def run(reference: Any, current: Any, *, categorical: bool = False, **kw: Any) -> DriftResult:
        if categorical:
            raise DetectorInputError(f"{function.__name__} takes numeric features only")
        return function(reference, current, **kw)

    return run


def _categorical_only(function: Callable[..., DriftResult]) -> BatchFunction:
    def run(reference: Any, current: Any, *, categorical: bool = True, **kw: Any) -> DriftResult:
        if not categorical:
            raise DetectorInputError(f"{function.__name__} takes categorical features only")
        return function(reference, current, **kw)

    return run


def _normed_wasserstein(reference: Any, current: Any, **kw: Any) -> DriftResult:
    return wasserstein(reference, current, normalized=True, **kw)


def _sketch_normed_wasserstein(sketch: WindowSketch, **kw: Any) -> DriftResult:
    return sketch_wasserstein(sketch, normalized=True, **kw)


_SPECS = (
    StatisticSpec(
        "ks", "two-sample Kolmogorov-Smirnov test", frozenset({"numeric"}), True, 0.05,
        _numeric_only(ks_2samp), sketch_ks,
    ),
    StatisticSpec(
        "psi", "population stability index over reference quantile bins",
        frozenset({"numeric", "categorical"}), False, 0.2, psi, sketch_psi,
    ),
    StatisticSpec(
        "wasserstein_normed", "Wasserstein-1 distance in reference standard deviations",
        frozenset({"numeric"}), False, 0.1, _numeric_only(_normed_wasserstein),
        _sketch_normed_wasserstein,
    ),
    StatisticSpec(
        "jensen_shannon", "Jensen-Shannon distance (base 2) over reference bins",
        frozenset({"numeric", "categorical"}), False, 0.1, jensen_shannon, sketch_jensen_shannon,
    ),
    StatisticSpec(
        "hellinger", "Hellinger distance over reference bins",
        frozenset({"numeric", "categorical"}), False, 0.1, hellinger, sketch_hellinger,
    ),
    StatisticSpec(
        "chi2", "chi-square test of homogeneity (categories unseen in the reference apart)",
        frozenset({"categorical"}), True, 0.05, _categorical_only(chi2), sketch_chi2,
    ),
)  # fmt: skip

STATISTICS: Mapping[str, StatisticSpec] = MappingProxyType({s.name: s for s in _SPECS})
"""Registered statistics by name (read-only)."""


def get_statistic(name: str) -> StatisticSpec:
    """The statistic registered as ``name``; an unknown name is a ``DetectorInputError``."""
    try:
        return STATISTICS[name]
    except KeyError:
        known = ", ".join(sorted(STATISTICS))
        raise DetectorInputError(f"unknown statistic {name!r} (known: {known})") from None
