import math
import warnings

import numpy as np
import pytest
from scipy import special, stats

from detectors import SortedReference, ks_2samp
from detectors.ks import EXACT_MAX_PRODUCT, exact_pvalue


def scipy_ks(a, b, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return stats.ks_2samp(a, b, method=method)


@pytest.mark.parametrize("seed", range(40))
def test_statistic_and_pvalues_equal_scipy_on_random_sizes_with_ties(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 80)), int(rng.integers(1, 80))
    if seed % 3 == 0:  # heavy ties, also across the two samples
        a, b = rng.integers(0, 5, n).astype(float), rng.integers(0, 6, m).astype(float)
    else:
        a, b = rng.normal(size=n), rng.normal(0.4, 1.3, size=m)
    for method in ("exact", "asymp"):
        ours = ks_2samp(a, b, method=method)
        theirs = scipy_ks(a, b, method)
        assert abs(ours.statistic[0] - theirs.statistic) <= 1e-12
        assert ours.pvalue[0] == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)


def test_statistic_equals_scipy_on_a_large_window_for_every_column():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(20_000, 6))
    cur = rng.normal(size=(15_000, 6)) + np.linspace(0, 0.3, 6)
    ours = ks_2samp(ref, cur, method="asymp")
    for j in range(6):
        theirs = scipy_ks(ref[:, j], cur[:, j], "asymp")
        assert abs(ours.statistic[j] - theirs.statistic) <= 1e-12
        assert ours.pvalue[j] == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)


def test_prepared_reference_gives_the_same_result_as_raw_arrays():
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=(500, 3)), rng.normal(size=(300, 3))
    prepared = SortedReference.fit(ref, names=["a", "b", "c"])
    from_prepared = ks_2samp(prepared, cur)
    from_raw = ks_2samp(ref, cur, names=["a", "b", "c"])
    np.testing.assert_array_equal(from_prepared.statistic, from_raw.statistic)
    np.testing.assert_array_equal(from_prepared.pvalue, from_raw.pvalue)
    assert from_prepared.names == ("a", "b", "c")


def test_auto_is_exact_for_small_windows_and_stephens_beyond():
    rng = np.random.default_rng(5)
    small = ks_2samp(rng.normal(size=100), rng.normal(size=100))
    assert small.method == ("exact",)
    assert EXACT_MAX_PRODUCT >= 100 * 100
    large = ks_2samp(rng.normal(size=200), rng.normal(size=100))
    assert large.method == ("stephens",)
    d, en = large.statistic[0], 200 * 100 / 300
    root = math.sqrt(en)
    expected = special.kolmogorov((root + 0.12 + 0.11 / root) * d)
    assert large.pvalue[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("n", "m", "bound"), [(200, 200, 0.02), (1000, 1000, 0.008), (300, 200, 0.004)]
)
def test_stephens_stays_close_to_the_exact_two_sample_pvalue(n, m, bound):
    """The documented accuracy of the default beyond the exact range, checked on the lattice."""
    lcm = n * m // math.gcd(n, m)
    en = n * m / (n + m)
    worst = 0.0
    for z in np.linspace(0.5, 2.2, 8):
        d = round(z / math.sqrt(en) * lcm) / lcm
        exact = exact_pvalue(n, m, d)
        assert exact is not None
        root = math.sqrt(en)
        worst = max(worst, abs(special.kolmogorov((root + 0.12 + 0.11 / root) * d) - exact))
    assert worst <= bound


def test_exact_falls_back_to_asymp_when_the_lattice_is_too_large():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=50_021), rng.normal(size=49_999)
    assert exact_pvalue(50_021, 49_999, 0.01) is None
    result = ks_2samp(a, b, method="exact")
    assert result.method == ("asymp",)
    assert result.pvalue[0] == pytest.approx(scipy_ks(a, b, "asymp").pvalue, rel=1e-9)


def test_constant_columns_and_single_values():
    assert ks_2samp(np.ones(10), np.ones(7)).statistic[0] == 0.0
    assert ks_2samp(np.ones(10), np.full(7, 2.0)).statistic[0] == 1.0
    one = ks_2samp(np.array([1.0]), np.array([2.0]), method="exact")
    theirs = scipy_ks([1.0], [2.0], "exact")
    assert (one.statistic[0], one.pvalue[0]) == pytest.approx((theirs.statistic, theirs.pvalue))


def test_nan_values_are_dropped_per_feature():
    rng = np.random.default_rng(8)
    ref, cur = rng.normal(size=(300, 2)), rng.normal(size=(200, 2))
    cur_nan = cur.copy()
    cur_nan[::7, 1] = np.nan
    ours = ks_2samp(ref, cur_nan, method="asymp")
    clean = cur_nan[:, 1][~np.isnan(cur_nan[:, 1])]
    theirs = scipy_ks(ref[:, 1], clean, "asymp")
    assert ours.statistic[1] == pytest.approx(theirs.statistic, abs=1e-12)
    assert ours.nulls_current.tolist() == [0, int(np.isnan(cur_nan[:, 1]).sum())]
    assert ours.n_current.tolist() == [200, clean.size]


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown KS method"):
        ks_2samp(np.ones(3), np.ones(3), method="fast")  # type: ignore[arg-type]


def test_equal_size_exact_matches_scipy_square_formula():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=60), rng.normal(0.5, size=60)
    ours = ks_2samp(a, b, method="exact")
    assert ours.pvalue[0] == pytest.approx(scipy_ks(a, b, "exact").pvalue, rel=1e-12)
