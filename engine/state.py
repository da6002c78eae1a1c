"""What a window accumulates while it is open: sketches and counters, all mergeable."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from detectors import ConfusionCounts, LatencyHistogram, RegressionAccumulator, WindowSketch
from engine.columns import is_none
from engine.decode import PredictionColumns
from engine.monitor import Monitor


def label_text(values: NDArray[np.object_]) -> NDArray[np.object_]:
    """Class labels as text: integral numbers without a decimal point, booleans as text."""
    out = np.empty(values.shape, dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out[i] = None
        elif isinstance(v, bool):
            out[i] = "true" if v else "false"
        elif isinstance(v, int | float) and float(v).is_integer():
            out[i] = str(int(v))
        else:
            out[i] = str(v)
    return out


def label_numbers(values: NDArray[np.object_]) -> NDArray[np.float64]:
    """Regression labels as floats (NaN where missing or not a number)."""
    return np.array(
        [
            float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
            for v in values
        ],
        dtype=np.float64,
    )


@dataclass
class WindowState:
    """One open window of one deployment.

    Attributes:
        start_ms, end_ms: the window ``[start, end)`` in event time (count windows: the
            first and last event time seen, end exclusive by one millisecond).
        sketch: feature values counted over the reference profile's bins.
        events, errors, late: counts of events in the window, of those the model server
            reported as errors, and of events that arrived after the window closed.
        latency: latency histogram (relative accuracy 1 %).
        prediction_sum, prediction_squares, prediction_n: moments of numeric predictions.
        classes: predicted class counts.
        metric_sum, metric_n: custom metric sums and counts.
        performance: confusion counts (classification) or error sums (regression) of the
            events whose label is known.

    """

    start_ms: int
    end_ms: int
    sketch: WindowSketch
    latency: LatencyHistogram = field(default_factory=LatencyHistogram.empty)
    events: int = 0
    errors: int = 0
    late: int = 0
    prediction_sum: float = 0.0
    prediction_squares: float = 0.0
    prediction_n: int = 0
    classes: Counter[str] = field(default_factory=Counter)
    metric_sum: dict[str, float] = field(default_factory=dict)
    metric_n: dict[str, int] = field(default_factory=dict)
    performance: ConfusionCounts | RegressionAccumulator | None = None
    request_ids: list[tuple[str, float, object]] = field(default_factory=list)
    resource_sum: dict[str, float] = field(default_factory=dict)
    resource_n: dict[str, int] = field(default_factory=dict)

    def add_resources(self, values: dict[str, NDArray[np.float64]]) -> None:
        """Count resource readings (cpu, memory_mb, gpu, replicas) into their window means."""
        for name, column in values.items():
            present = column[~np.isnan(column)]
            if present.size:
                self.resource_sum[name] = self.resource_sum.get(name, 0.0) + float(present.sum())
                self.resource_n[name] = self.resource_n.get(name, 0) + int(present.size)

    @classmethod
    def open(cls, monitor: Monitor, start_ms: int, end_ms: int) -> WindowState:
        """An empty window for ``monitor``."""
        state = cls(start_ms, end_ms, WindowSketch.empty(monitor.profile))
        if monitor.performance is not None:
            if monitor.performance.task == "classification":
                state.performance = ConfusionCounts.empty(monitor.performance.classes)
            else:
                state.performance = RegressionAccumulator.empty()
        return state

    def add(self, rows: PredictionColumns, monitor: Monitor) -> None:
        """Count ``rows`` (all of this window) into the state."""
        self.events += len(rows)
        self.errors += int(rows.error.sum())
        self.sketch.update(rows.numeric | rows.categorical)
        latency = rows.latency_ms[~np.isnan(rows.latency_ms)]
        if latency.size:
            self.latency = self.latency.update(latency)
        values = rows.prediction_value[~np.isnan(rows.prediction_value)]
        with np.errstate(over="ignore"):  # |x| > 1e154: the spread is infinite, honestly
            self.prediction_sum += float(values.sum())
            self.prediction_squares += float((values * values).sum())
        self.prediction_n += int(values.size)
        classes = rows.prediction_class[~is_none(rows.prediction_class)]
        self.classes.update(classes.tolist())
        for name in monitor.custom_metrics:
            column = rows.metrics.get(name)
            if column is not None:
                present = column[~np.isnan(column)]
                self.metric_sum[name] = self.metric_sum.get(name, 0.0) + float(present.sum())
                self.metric_n[name] = self.metric_n.get(name, 0) + int(present.size)
        if self.performance is not None:
            self.add_labels(rows.label, rows.prediction_value, rows.prediction_class)

    def add_labels(
        self,
        labels: NDArray[np.object_],
        prediction_value: NDArray[np.float64],
        prediction_class: NDArray[np.object_],
    ) -> None:
        """Count (label, prediction) pairs whose label is known into the performance state."""
        if isinstance(self.performance, ConfusionCounts):
            truth = label_text(labels)
            predicted = label_text(
                np.where(
                    is_none(prediction_class), prediction_value.astype(object), prediction_class
                )
            )
            known = ~is_none(truth) & ~is_none(predicted)
            if known.any():
                self.performance = self.performance.update(truth[known], predicted[known])
        elif isinstance(self.performance, RegressionAccumulator):
            target = label_numbers(labels)
            known = ~np.isnan(target) & ~np.isnan(prediction_value)
            if known.any():
                self.performance = self.performance.update(target[known], prediction_value[known])
