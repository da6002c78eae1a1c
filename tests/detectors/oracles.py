"""Per-column peer implementations the detectors must agree with (scipy or the written formula)."""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon


def _clean(a: np.ndarray) -> np.ndarray:
    return a[~np.isnan(a)]


def reference_bins(ref: np.ndarray, bins: int = 10):
    """The PSI bins of the written definition, built one column at a time."""
    ref = _clean(ref)
    distinct = np.unique(ref)
    if distinct.size <= bins:
        return ("values", distinct)
    return ("edges", np.unique(np.quantile(ref, np.arange(1, bins) / bins)))


def proportions(values: np.ndarray, spec) -> np.ndarray:
    kind, e = spec
    values = _clean(values)
    if kind == "values":
        counts = np.array([np.sum(values == v) for v in e] + [np.sum(~np.isin(values, e))])
    else:
        index = np.array([np.sum(e <= v) for v in values], dtype=int)
        counts = np.bincount(index, minlength=e.size + 1)
    return counts / counts.sum()


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    spec = reference_bins(ref)
    p, q = proportions(ref, spec), proportions(cur, spec)
    p = np.where(p == 0, 1e-4, p)
    q = np.where(q == 0, 1e-4, q)
    return float(np.sum((q - p) * np.log(q / p)))


def js(ref: np.ndarray, cur: np.ndarray) -> float:
    spec = reference_bins(ref)
    return float(jensenshannon(proportions(ref, spec), proportions(cur, spec), base=2))


def hellinger(ref: np.ndarray, cur: np.ndarray) -> float:
    spec = reference_bins(ref)
    p, q = proportions(ref, spec), proportions(cur, spec)
    return float(np.linalg.norm(np.sqrt(p) - np.sqrt(q)) / np.sqrt(2))


def ks(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    result = stats.ks_2samp(_clean(ref), _clean(cur))
    return float(result.statistic), float(result.pvalue)


def wasserstein_normed(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = _clean(ref), _clean(cur)
    return float(stats.wasserstein_distance(ref, cur) / np.std(ref))


def category_table(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    ref = [str(v) for v in ref if v is not None]
    cur = [str(v) for v in cur if v is not None]
    categories = sorted(set(ref)) + sorted(set(cur) - set(ref))
    return np.array([[ref.count(c) for c in categories], [cur.count(c) for c in categories]])


def chi2(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    result = stats.chi2_contingency(category_table(ref, cur), correction=False)
    return float(result.statistic), float(result.pvalue)


def categorical_psi(ref: np.ndarray, cur: np.ndarray) -> float:
    table = category_table(ref, cur).astype(float)
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    p = np.where(p == 0, 1e-4, p)
    q = np.where(q == 0, 1e-4, q)
    return float(np.sum((q - p) * np.log(q / p)))


def categorical_js(ref: np.ndarray, cur: np.ndarray) -> float:
    table = category_table(ref, cur).astype(float)
    return float(jensenshannon(table[0], table[1], base=2))


def categorical_hellinger(ref: np.ndarray, cur: np.ndarray) -> float:
    table = category_table(ref, cur).astype(float)
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    return float(np.linalg.norm(np.sqrt(p) - np.sqrt(q)) / np.sqrt(2))


# (statistic name, feature type) -> oracle returning the statistic, or (statistic, p-value)
ORACLES = {
    ("ks", "numeric"): ks,
    ("psi", "numeric"): psi,
    ("wasserstein_normed", "numeric"): wasserstein_normed,
    ("jensen_shannon", "numeric"): js,
    ("hellinger", "numeric"): hellinger,
    ("chi2", "categorical"): chi2,
    ("psi", "categorical"): categorical_psi,
    ("jensen_shannon", "categorical"): categorical_js,
    ("hellinger", "categorical"): categorical_hellinger,
}
