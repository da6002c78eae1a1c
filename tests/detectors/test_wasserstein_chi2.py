import numpy as np
import pytest
from scipy import stats

from detectors import SortedReference, chi2, wasserstein


@pytest.mark.parametrize("seed", range(20))
def test_wasserstein_equals_scipy_for_any_sizes(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 400)), int(rng.integers(1, 400))
    a = rng.normal(size=n) * 10.0 ** int(rng.integers(-3, 4))
    b = rng.standard_t(3, size=m)
    if seed % 4 == 0:
        a, b = np.round(a), np.round(b)
    ours = wasserstein(a, b).statistic[0]
    assert ours == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-300)


def test_wasserstein_groups_features_of_different_sizes():
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=(300, 3)), rng.normal(1, size=(200, 3))
    ref[::3, 0] = np.nan
    cur[::5, 2] = np.nan
    result = wasserstein(SortedReference.fit(ref), cur)
    for j in range(3):
        a, b = ref[:, j], cur[:, j]
        expected = stats.wasserstein_distance(a[~np.isnan(a)], b[~np.isnan(b)])
        assert result.statistic[j] == pytest.approx(expected, rel=1e-9)


def test_normalized_wasserstein_is_in_reference_standard_deviations():
    rng = np.random.default_rng(2)
    ref = rng.normal(0, 4, size=5000)
    cur = ref + 2.0
    result = wasserstein(ref, cur, normalized=True)
    assert result.name == "wasserstein_normed"
    assert result.statistic[0] == pytest.approx(2.0 / np.std(ref), rel=1e-9)


def test_normalized_wasserstein_on_a_constant_reference():
    flat = np.ones(10)
    assert wasserstein(flat, flat, normalized=True).statistic[0] == 0.0
    assert wasserstein(flat, flat + 1, normalized=True).statistic[0] == np.inf


def scipy_chi2(table):
    return stats.chi2_contingency(np.asarray(table), correction=False)


def test_chi2_keeps_vanished_categories_and_adds_unseen_ones():
    ref = ["a"] * 30 + ["b"] * 20 + ["c"] * 10
    cur = ["a"] * 25 + ["b"] * 5 + ["new"] * 3
    ours = chi2(np.array(ref, dtype=object), np.array(cur, dtype=object))
    theirs = scipy_chi2([[30, 20, 10, 0], [25, 5, 0, 3]])
    assert ours.statistic[0] == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.pvalue[0] == pytest.approx(theirs.pvalue, rel=1e-9)


def test_chi2_single_category_is_no_evidence():
    ours = chi2(np.array(["a"] * 5, dtype=object), np.array(["a"] * 3, dtype=object))
    theirs = scipy_chi2([[5], [3]])
    assert (ours.statistic[0], ours.pvalue[0]) == (theirs.statistic, theirs.pvalue) == (0.0, 1.0)


def test_chi2_compares_categories_by_their_text_and_skips_missing():
    ref = np.array([1, 2, None, 2, float("nan")], dtype=object)
    cur = np.array(["1", "2", "2", None], dtype=object)
    result = chi2(ref, cur)
    assert result.nulls_reference.tolist() == [2]
    assert result.nulls_current.tolist() == [1]
    theirs = scipy_chi2([[1, 2], [1, 2]])
    assert result.statistic[0] == pytest.approx(theirs.statistic, abs=1e-12)
