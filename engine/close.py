"""Closing a window: every statistic of the monitor over all its features, in one pass."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from detectors import (
    STATISTICS,
    ConfusionCounts,
    DriftResult,
    RegressionAccumulator,
    adjust_pvalues,
    classification_metrics,
    regression_metrics,
)
from engine.monitor import Monitor
from engine.results import DriftRow, FeatureStats, WindowResult
from engine.state import WindowState

_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def close_window(
    state: WindowState, monitor: Monitor, *, organization: str, with_performance: bool
) -> WindowResult:
    """Compute the window's results (see :class:`~engine.results.WindowResult`).

    A window with fewer than ``monitor.min_samples`` events is marked insufficient: its
    drift rows carry no value and never count as drifted.
    """
    insufficient = state.events < monitor.min_samples
    p50, p90, p99 = (
        tuple(float(v) for v in state.latency.quantile([0.5, 0.9, 0.99]))
        if state.latency.count
        else (math.nan,) * 3
    )
    n = state.prediction_n
    mean = state.prediction_sum / n if n else math.nan
    std = math.sqrt(max(state.prediction_squares / n - mean * mean, 0.0)) if n else math.nan
    return WindowResult(
        organization=organization,
        deployment=monitor.deployment,
        start_ms=state.start_ms,
        end_ms=state.end_ms,
        events=state.events,
        errors=state.errors,
        late=state.late,
        insufficient=insufficient,
        drift=drift_rows(state, monitor) if state.events else (),
        features=feature_stats(state, monitor),
        latency_ms=(p50, p90, p99),
        prediction_mean=mean,
        prediction_std=std,
        class_counts=dict(state.classes),
        custom_metrics={
            name: state.metric_sum[name] / state.metric_n[name]
            for name in monitor.custom_metrics
            if state.metric_n.get(name)
        },
        performance=performance_rows(state) if with_performance else (),
        resources={k: state.resource_sum[k] / state.resource_n[k] for k in state.resource_sum},
    )


def drift_rows(state: WindowState, monitor: Monitor) -> tuple[DriftRow, ...]:
    """Every statistic of the drift policy for every watched feature, with the verdicts."""
    policy = monitor.drift
    results: list[tuple[str, DriftResult]] = []
    for kind, names, watched in (
        ("numeric", policy.numeric, monitor.numeric),
        ("categorical", policy.categorical, monitor.categorical),
    ):
        if not watched:
            continue
        for name in names:
            result = STATISTICS[name].sketch(
                state.sketch, categorical=kind == "categorical", min_samples=monitor.min_samples
            )
            results.append((kind, _select(result, watched)))
    raw = [r.pvalue if r.pvalue is not None else np.full(len(r), np.nan) for _, r in results]
    flat = np.concatenate(raw) if raw else np.empty(0)
    adjusted = adjust_pvalues(flat, policy.correction)
    floors = {
        kind: _floor_ok(results, kind, policy.effect_floor.get(kind), policy.threshold)
        for kind in ("numeric", "categorical")
    }
    has_test = {
        kind: any(r.pvalue is not None for k, r in results if k == kind)
        for kind in ("numeric", "categorical")
    }
    rejected: dict[tuple[str, str], bool] = {}
    offset = 0
    for kind, result in results:
        if result.pvalue is not None:
            for j, feature in enumerate(result.names):
                p_adj = adjusted[offset + j]
                hit = bool(p_adj <= policy.alpha) and not result.insufficient[j]
                rejected[kind, feature] = rejected.get((kind, feature), False) or hit
        offset += len(result)
    rows: list[DriftRow] = []
    offset = 0
    for kind, result in results:
        threshold = policy.threshold(result.name)
        for j, feature in enumerate(result.names):
            value = float(result.statistic[j])
            p = float(result.pvalue[j]) if result.pvalue is not None else None
            p_adj = float(adjusted[offset + j]) if result.pvalue is not None else None
            if result.insufficient[j]:
                drifted = False
            elif has_test[kind]:
                # the feature's verdict: a test rejects (adjusted) and the effect floor holds
                drifted = rejected.get((kind, feature), False) and floors[kind].get(feature, True)
            else:
                drifted = value >= threshold
            rows.append(
                DriftRow(
                    feature=feature,
                    statistic=result.name,
                    value=value,
                    p_value=None if p is None or math.isnan(p) else p,
                    p_value_adjusted=None if p_adj is None or math.isnan(p_adj) else p_adj,
                    threshold=threshold,
                    drifted=bool(drifted),
                    reference_size=int(result.n_reference[j]),
                    current_size=int(result.n_current[j]),
                    insufficient=bool(result.insufficient[j]),
                )
            )
        offset += len(result)
    return tuple(rows)


def _select(result: DriftResult, watched: tuple[str, ...]) -> DriftResult:
    """Keep only the monitor's features (a profile may hold more)."""
    if result.names == watched:
        return result
    index = np.array([result.names.index(f) for f in watched], dtype=np.intp)

    def pick(a: NDArray[np.float64] | None) -> NDArray[np.float64] | None:
        return None if a is None else a[index].copy()

    return DriftResult(
        name=result.name,
        names=watched,
        statistic=result.statistic[index].copy(),
        pvalue=pick(result.pvalue),
        n_reference=result.n_reference[index].copy(),
        n_current=result.n_current[index].copy(),
        nulls_reference=result.nulls_reference[index].copy(),
        nulls_current=result.nulls_current[index].copy(),
        insufficient=result.insufficient[index].copy(),
        error_bound=pick(result.error_bound),
        method=tuple(result.method[i] for i in index) if result.method else (),
    )


def _floor_ok(
    results: list[tuple[str, DriftResult]],
    kind: str,
    name: str | None,
    threshold_of: Callable[[str], float],
) -> dict[str, bool]:
    """Per feature: does the effect-size statistic reach its threshold (no floor: always)."""
    if name is None:
        return {}
    for result_kind, result in results:
        if result_kind == kind and result.name == name:
            limit = threshold_of(name)
            return {f: bool(result.statistic[j] >= limit) for j, f in enumerate(result.names)}
    return {}


def feature_stats(state: WindowState, monitor: Monitor) -> tuple[FeatureStats, ...]:
    """Count, missing, moments, range and quantile estimates of every watched feature."""
    sketch, profile = state.sketch, state.sketch.profile
    mean, std, n = sketch.mean(), sketch.std(), sketch.n
    out = []
    for feature in monitor.numeric:
        j = profile.numeric.index(feature)
        out.append(
            FeatureStats(
                feature=feature,
                count=int(n[j]),
                null_count=int(sketch.nulls[j]),
                mean=float(mean[j]),
                std=float(std[j]),
                minimum=float(sketch.minimum[j]) if n[j] else math.nan,
                maximum=float(sketch.maximum[j]) if n[j] else math.nan,
                quantiles=_quantiles(state, j),
                histogram_edges=tuple(float(e) for e in profile.coarse.edges[j]),
                histogram_counts=tuple(
                    int(c) for c in sketch.coarse_counts[j, : profile.coarse.edges[j].size + 1]
                ),
            )
        )
    for feature in monitor.categorical:
        j = profile.categorical.index(feature)
        count = int(sketch.category_counts[j].sum() + sum(sketch.unseen[j].values()))
        out.append(
            FeatureStats(
                feature=feature,
                count=count,
                null_count=int(sketch.category_nulls[j]),
                mean=math.nan,
                std=math.nan,
                minimum=math.nan,
                maximum=math.nan,
                quantiles=(math.nan,) * 5,
                categories=_categories(state, j),
            )
        )
    return tuple(out)


def _categories(state: WindowState, j: int) -> dict[str, int]:
    """Count per category of categorical feature ``j``: the vocabulary's, then unseen ones."""
    sketch = state.sketch
    vocabulary = sketch.profile.vocabulary[j]
    counts = sketch.category_counts[j, : len(vocabulary)]
    seen = {name: int(n) for name, n in zip(vocabulary, counts, strict=True) if n}
    return seen | {name: int(n) for name, n in sketch.unseen[j].items()}


def _quantiles(state: WindowState, j: int) -> tuple[float, float, float, float, float]:
    """Quantiles from the fine bins, interpolating linearly inside the bin that holds each."""
    sketch = state.sketch
    edges = sketch.profile.fine.edges[j]
    counts = sketch.fine_counts[j, : edges.size + 1].astype(np.float64)
    total = counts.sum()
    if total == 0:
        return (math.nan,) * 5
    lo, hi = float(sketch.minimum[j]), float(sketch.maximum[j])
    bounds = np.clip(np.concatenate([[lo], edges, [hi]]), lo, hi)
    cumulative = np.cumsum(counts)
    out = []
    for q in _QUANTILES:
        rank = q * total
        b = int(np.searchsorted(cumulative, rank, side="left"))
        before = cumulative[b - 1] if b else 0.0
        share = (rank - before) / counts[b] if counts[b] else 0.0
        out.append(float(bounds[b] + share * (bounds[b + 1] - bounds[b])))
    return (out[0], out[1], out[2], out[3], out[4])


def performance_rows(state: WindowState) -> tuple[tuple[str, float, int], ...]:
    """(metric, value, labelled events) rows from the window's labelled events."""
    performance = state.performance
    if isinstance(performance, ConfusionCounts) and performance.n:
        m = classification_metrics(performance)
        return (
            ("accuracy", m.accuracy, m.n),
            ("macro_precision", m.macro_precision, m.n),
            ("macro_recall", m.macro_recall, m.n),
            ("macro_f1", m.macro_f1, m.n),
        )
    if isinstance(performance, RegressionAccumulator) and performance.n:
        r = regression_metrics(performance)
        return (("mae", r.mae, r.n), ("rmse", r.rmse, r.n), ("mape", r.mape, r.n))
    return ()
