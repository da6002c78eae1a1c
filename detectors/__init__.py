"""Driftline's numerical core: drift statistics, reference profiles, sketches, degradation.

Pure numpy/scipy; no I/O and no framework imports. Every statistic takes 2-D arrays
(rows x features; a 1-D array is one feature), computes all features in one call and
returns a frozen dataclass of per-feature numpy arrays. Missing values (NaN, None, null)
are dropped and counted per feature; bad input raises :class:`DetectorInputError`.

Drift, on raw values: :func:`ks_2samp`, :func:`psi`, :func:`wasserstein`,
:func:`jensen_shannon`, :func:`hellinger`, :func:`chi2`; on sketches: the ``sketch_*``
functions over a :class:`WindowSketch` of a :class:`ReferenceProfile`; by name:
:data:`STATISTICS`. Verdict: :func:`dataset_verdict`. Degradation:
:class:`ConfusionCounts`, :class:`RegressionAccumulator`, :class:`LatencyHistogram`,
:func:`error_rate`. Change points: :func:`page_hinkley`, :func:`cusum`.
"""

from detectors.binning import Binning, quantile_binning
from detectors.categorical import CategoryCodes
from detectors.changepoint import CusumResult, PageHinkleyResult, cusum, page_hinkley
from detectors.chi2 import chi2
from detectors.classification import (
    ClassificationMetrics,
    ConfusionCounts,
    Label,
    classification_metrics,
)
from detectors.divergence import hellinger, jensen_shannon
from detectors.errors import DetectorError, DetectorInputError
from detectors.ks import ks_2samp
from detectors.latency import ErrorRate, LatencyHistogram, error_rate
from detectors.profile import PROFILE_VERSION, ReferenceProfile
from detectors.psi import psi
from detectors.registry import STATISTICS, StatisticSpec, get_statistic
from detectors.regression import RegressionAccumulator, RegressionMetrics, regression_metrics
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
from detectors.sorted_reference import SortedReference
from detectors.verdict import DatasetVerdict, adjust_pvalues, dataset_verdict
from detectors.wasserstein import wasserstein

__all__ = [
    "PROFILE_VERSION",
    "STATISTICS",
    "Binning",
    "CategoryCodes",
    "ClassificationMetrics",
    "ConfusionCounts",
    "CusumResult",
    "DatasetVerdict",
    "DetectorError",
    "DetectorInputError",
    "DriftResult",
    "ErrorRate",
    "Label",
    "LatencyHistogram",
    "PageHinkleyResult",
    "ReferenceProfile",
    "RegressionAccumulator",
    "RegressionMetrics",
    "SortedReference",
    "StatisticSpec",
    "WindowSketch",
    "adjust_pvalues",
    "chi2",
    "classification_metrics",
    "cusum",
    "dataset_verdict",
    "error_rate",
    "get_statistic",
    "hellinger",
    "jensen_shannon",
    "ks_2samp",
    "page_hinkley",
    "psi",
    "quantile_binning",
    "regression_metrics",
    "sketch_chi2",
    "sketch_hellinger",
    "sketch_jensen_shannon",
    "sketch_ks",
    "sketch_psi",
    "sketch_wasserstein",
    "wasserstein",
]
