"""The drift plot: a feature's reference histogram against one window's, as a PNG.

Both histograms come from counts, never from raw values: the reference's from its profile
(coarse bins, or the vocabulary), the window's from what the engine stored when the window
closed (its counts over the same coarse bins, or per category). Shares (count / total) are
drawn so that a reference of 100 000 rows and a window of 500 compare; interval bins are
drawn as densities (share / bin width) on the feature's axis, the open outer bins closed at
the smallest and largest value either side saw. Value bins and categories are bars.

Rendering uses a bare :class:`~matplotlib.figure.Figure` saved as PNG through the Agg
renderer (no pyplot, no global state), so requests may render at once. The title is also
stored in the PNG's ``Title`` text chunk.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

__all__ = ["Histograms", "Verdict", "render", "title"]

WIDTH_PX, HEIGHT_PX, DPI = 800, 450, 100
MAX_BARS = 30  # categories drawn; the rest are pooled as "(other)"
_LABELS = {
    "ks": "KS",
    "psi": "PSI",
    "chi2": "chi-square",
    "wasserstein_normed": "Wasserstein (normed)",
    "jensen_shannon": "Jensen-Shannon",
    "hellinger": "Hellinger",
}


@dataclass(frozen=True)
class Verdict:
    """The stored drift result shown in the title."""

    statistic: str
    value: float
    p_value: float | None
    drifted: bool


@dataclass(frozen=True)
class Histograms:
    """Reference and window counts over the same bins.

    ``edges`` set (interval bins): ``len(edges) + 1`` counts each, ``low``/``high`` close the
    outer bins. Otherwise ``labels`` names each bar (value bins or categories).
    """

    reference: NDArray[np.float64]
    current: NDArray[np.float64]
    edges: NDArray[np.float64] | None = None
    low: float = math.nan
    high: float = math.nan
    labels: tuple[str, ...] = ()


def title(feature: str, verdict: Verdict) -> str:
    """``income: KS 0.31 (p=1e-12), drifted``, from the stored result (ASCII only)."""
    name = _LABELS.get(verdict.statistic, verdict.statistic)
    p = "" if verdict.p_value is None else f" (p={verdict.p_value:.2g})"
    state = "drifted" if verdict.drifted else "no drift"
    return f"{feature}: {name} {verdict.value:.3g}{p}, {state}"


def _shares(counts: NDArray[np.float64]) -> NDArray[np.float64]:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def render(feature: str, verdict: Verdict, histograms: Histograms) -> bytes:
    """The PNG (``WIDTH_PX`` x ``HEIGHT_PX``) of ``histograms`` titled by ``verdict``."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    reference, current = _shares(histograms.reference), _shares(histograms.current)
    if histograms.edges is not None:
        edges = np.concatenate([[histograms.low], histograms.edges, [histograms.high]])
        widths = np.diff(edges)
        safe = np.where(widths > 0, widths, 1.0)
        axes.stairs(np.where(widths > 0, reference / safe, 0.0), edges, fill=True, alpha=0.4,
                    label="reference")  # fmt: skip
        axes.stairs(np.where(widths > 0, current / safe, 0.0), edges, linewidth=2,
                    label="window")  # fmt: skip
        axes.set_xlabel(feature)
        axes.set_ylabel("density (share / bin width)")
    else:
        positions = np.arange(len(histograms.labels))
        axes.bar(positions - 0.2, reference, width=0.4, alpha=0.6, label="reference")
        axes.bar(positions + 0.2, current, width=0.4, label="window")
        axes.set_xticks(positions, histograms.labels, rotation=45, ha="right")
        axes.set_ylabel("share")
    axes.legend()
    text = title(feature, verdict)
    axes.set_title(text)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Title": text})
    return buffer.getvalue()
