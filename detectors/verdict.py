"""Dataset-level drift verdict: which features drifted, and is the share large enough.

A feature drifts when:

* for a test (a result with p-values): its *adjusted* p-value is ``<= alpha``, adjusted
  over the features tested together with

  - ``"bonferroni"``: ``min(1, p * m)`` (controls the family-wise error rate),
  - ``"bh"`` (Benjamini-Hochberg): ``min_{j >= i} (m / j) p_(j)`` over the sorted p-values,
    capped at 1 (controls the false discovery rate; equal to
    ``scipy.stats.false_discovery_control(p, method="bh")``),
  - ``"none"``: the raw p-value,

  where ``m`` is the number of features with a p-value;
* for a distance (PSI, Jensen-Shannon ...): its statistic is ``>= threshold``.

Features marked insufficient are neither drifted nor counted in ``m`` or in the share. The
dataset drifts when ``share = drifted / evaluated >= share_threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from detectors._columns import readonly
from detectors.results import DriftResult

Correction = Literal["bh", "bonferroni", "none"]


@dataclass(frozen=True)
class DatasetVerdict:
    """Per-feature drift flags and the dataset-level verdict (see the module docstring).

    Attributes:
        names: feature names, in the order of the results given.
        statistic_names: the statistic that judged each feature.
        score: the adjusted p-value (tests) or the statistic (distances), per feature.
        threshold: ``alpha`` (tests) or the distance threshold, per feature.
        drifted: per feature; ``False`` where insufficient.
        insufficient: per feature.
        share: drifted features / evaluated features (NaN when none was evaluated).
        dataset_drift: ``share >= share_threshold``.
        correction: the multiple-testing correction applied to the tests.

    """

    names: tuple[str, ...]
    statistic_names: tuple[str, ...]
    score: NDArray[np.float64]
    threshold: NDArray[np.float64]
    drifted: NDArray[np.bool_]
    insufficient: NDArray[np.bool_]
    share: float
    dataset_drift: bool
    correction: Correction

    def __post_init__(self) -> None:
        for a in (self.score, self.threshold, self.drifted, self.insufficient):
            readonly(a)


def adjust_pvalues(pvalues: NDArray[np.float64], correction: Correction) -> NDArray[np.float64]:
    """Adjusted p-values for ``correction``; NaN entries stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    values = p[present]
    m = values.size
    if m == 0:
        return out
    if correction == "none":
        adjusted = values
    elif correction == "bonferroni":
        adjusted = np.minimum(values * m, 1.0)
    elif correction == "bh":
        order = np.argsort(values)
        scaled = values[order] * m / np.arange(1, m + 1)
        running = np.minimum.accumulate(scaled[::-1])[::-1]
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(running, 1.0)
    else:
        raise ValueError(f"unknown correction {correction!r}")
    out[present] = adjusted
    return out


def dataset_verdict(
    results: DriftResult | Sequence[DriftResult],
    *,
    alpha: float = 0.05,
    thresholds: dict[str, float] | None = None,
    correction: Correction = "bh",
    share_threshold: float = 0.5,
) -> DatasetVerdict:
    """Judge every feature of ``results`` and the dataset as a whole (module docstring).

    Args:
        results: one result or several (e.g. KS for numeric and chi-square for categorical
            features); tests among them are corrected together.
        alpha: significance level for tests.
        thresholds: distance threshold per statistic name; defaults to the registry's.
        correction: ``"bh"`` (default), ``"bonferroni"`` or ``"none"``.
        share_threshold: share of drifted features at which the dataset drifts.

    """
    from detectors.registry import STATISTICS

    group = [results] if isinstance(results, DriftResult) else list(results)
    if not group:
        raise ValueError("dataset_verdict needs at least one result")
    limits = {name: spec.default_threshold for name, spec in STATISTICS.items()}
    limits.update(thresholds or {})
    is_test = np.concatenate([np.full(len(r), r.pvalue is not None) for r in group])
    raw = np.concatenate(
        [r.pvalue if r.pvalue is not None else np.full(len(r), np.nan) for r in group]
    )
    statistic = np.concatenate([r.statistic for r in group])
    insufficient = np.concatenate([r.insufficient for r in group])
    adjusted = adjust_pvalues(np.where(is_test & ~insufficient, raw, np.nan), correction)
    score = np.where(is_test, adjusted, statistic)
    threshold = np.concatenate(
        [np.full(len(r), alpha if r.pvalue is not None else limits[r.name]) for r in group]
    )
    with np.errstate(invalid="ignore"):
        drifted = np.where(is_test, score <= threshold, score >= threshold) & ~insufficient
    evaluated = int((~insufficient).sum())
    share = float(drifted.sum() / evaluated) if evaluated else float("nan")
    return DatasetVerdict(
        names=tuple(n for r in group for n in r.names),
        statistic_names=tuple(r.name for r in group for _ in r.names),
        score=np.asarray(score, dtype=np.float64),
        threshold=threshold,
        drifted=np.asarray(drifted, dtype=bool),
        insufficient=insufficient,
        share=share,
        dataset_drift=bool(evaluated and share >= share_threshold),
        correction=correction,
    )
