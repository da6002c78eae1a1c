import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from detectors import hellinger, jensen_shannon, psi, quantile_binning
from detectors.binning import bin_counts, bin_index
from detectors.psi import PSI_EPSILON
from tests.detectors import oracles


def test_edges_are_reference_quantiles_at_i_over_bins_deduplicated():
    ref = np.concatenate([np.zeros(50), np.arange(50.0)])
    binning = quantile_binning(ref[:, None], 10, by_value_up_to=10)
    expected = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    np.testing.assert_array_equal(binning.edges[0], expected)
    assert binning.edges[0].size < 9  # duplicates removed
    assert not binning.by_value[0]


def test_edge_values_go_to_the_bin_on_their_right_and_outer_bins_are_open():
    binning = quantile_binning(np.arange(100.0)[:, None], 4, by_value_up_to=4)
    e = binning.edges[0]
    values = np.array([-1e9, e[0], np.nextafter(e[0], -np.inf), e[-1], 1e9])
    assert bin_index(values[:, None], binning)[:, 0].tolist() == [0, 1, 0, 3, 3]


def test_psi_follows_the_written_definition():
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=2000), rng.normal(0.3, 1.2, size=1500)
    assert psi(ref, cur).statistic[0] == pytest.approx(oracles.psi(ref, cur), rel=1e-12)


def test_empty_bins_use_epsilon_on_either_side():
    ref = np.arange(100.0)
    cur = np.full(10, 1000.0)  # every value in the last bin
    p_ref = np.full(10, 0.1)
    p_cur = np.array([PSI_EPSILON] * 9 + [1.0])
    expected = np.sum((p_cur - p_ref) * np.log(p_cur / p_ref))
    assert psi(ref, cur).statistic[0] == pytest.approx(expected, rel=1e-12)


def test_few_distinct_values_get_a_bin_each_plus_an_overflow_bin():
    ref = np.array([1.0, 2.0, 2.0, 3.0] * 25)
    binning = quantile_binning(ref[:, None], 10, by_value_up_to=10)
    assert binning.by_value[0]
    assert binning.n_bins.tolist() == [4]
    cur = np.array([1.0, 2.0, 2.5, 7.0])
    assert bin_index(cur[:, None], binning)[:, 0].tolist() == [0, 1, 3, 3]
    counts, nulls = bin_counts(np.array([[1.0], [np.nan], [9.0]]), binning)
    assert counts[0].tolist() == [1, 0, 0, 1]
    assert nulls.tolist() == [1]
    assert psi(ref, cur).statistic[0] == pytest.approx(oracles.psi(ref, cur), rel=1e-12)


def test_bins_come_from_the_reference_only():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=1000)
    first = psi(ref, rng.normal(5, size=500)).statistic[0]
    # Evidently-style bins fitted on both sides would shrink this; reference bins keep it.
    assert first > 5
    assert psi(ref, ref + 5).statistic[0] == pytest.approx(first, rel=0.05)


def test_jensen_shannon_equals_scipy_on_the_same_proportions():
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=3000), rng.exponential(size=2000)
    spec = oracles.reference_bins(ref)
    expected = jensenshannon(oracles.proportions(ref, spec), oracles.proportions(cur, spec), base=2)
    assert jensen_shannon(ref, cur).statistic[0] == pytest.approx(expected, rel=1e-12)


def test_distances_reach_one_when_the_bins_do_not_overlap():
    # Value bins: every current value falls in the overflow bin, which the reference lacks.
    ref, cur = np.array([1.0, 2.0] * 50), np.full(40, 7.0)
    assert jensen_shannon(ref, cur).statistic[0] == pytest.approx(1.0)
    assert hellinger(ref, cur).statistic[0] == pytest.approx(1.0)


def test_categorical_distances_count_unseen_categories_apart():
    ref = np.array(["a", "b"] * 50, dtype=object)
    cur = np.array(["a"] * 50 + ["z"] * 50, dtype=object)
    result = psi(ref, cur, categorical=True)
    assert result.statistic[0] == pytest.approx(oracles.categorical_psi(ref, cur), rel=1e-12)
    assert hellinger(ref, cur, categorical=True).statistic[0] == pytest.approx(
        oracles.categorical_hellinger(ref, cur), rel=1e-12
    )
