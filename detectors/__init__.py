"""Driftline's numerical core: drift statistics, reference profiles, sketches, degradation.

Pure numpy/scipy; no I/O and no framework imports. Every statistic takes 2-D arrays
(rows x features; a 1-D array is one feature), computes all features in one call and
returns a frozen dataclass of per-feature numpy arrays.
"""

from detectors.errors import DetectorError, DetectorInputError
from detectors.results import DriftResult

__all__ = ["DetectorError", "DetectorInputError", "DriftResult"]
