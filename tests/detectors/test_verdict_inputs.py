import numpy as np
import polars as pl
import pytest
from scipy import stats

from detectors import (
    DetectorInputError,
    DriftResult,
    adjust_pvalues,
    chi2,
    dataset_verdict,
    get_statistic,
    ks_2samp,
    psi,
)


@pytest.mark.parametrize("seed", range(5))
def test_benjamini_hochberg_equals_scipy(seed):
    p = np.random.default_rng(seed).uniform(0, 0.2, size=25) ** 2
    np.testing.assert_allclose(
        adjust_pvalues(p, "bh"), stats.false_discovery_control(p, method="bh"), rtol=1e-12
    )


def test_bonferroni_multiplies_and_caps_and_nan_is_not_counted():
    p = np.array([0.01, np.nan, 0.3, 0.02])
    adjusted = adjust_pvalues(p, "bonferroni")
    np.testing.assert_allclose(adjusted[[0, 2, 3]], [0.03, 0.9, 0.06])
    assert np.isnan(adjusted[1])
    np.testing.assert_array_equal(adjust_pvalues(p, "none")[[0, 2]], [0.01, 0.3])
    assert np.isnan(adjust_pvalues(np.array([np.nan]), "bh")).all()
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_pvalues(p, "holm")  # type: ignore[arg-type]


def test_verdict_combines_tests_and_distances_and_skips_insufficient_features():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(2000, 4))
    cur = rng.normal(size=(2000, 4))
    cur[:, :2] += 0.5
    cur[:, 3] = np.nan  # insufficient
    ks = ks_2samp(ref, cur)
    cats = chi2(np.array(["a", "b"] * 50, dtype=object), np.array(["a"] * 60, dtype=object))
    verdict = dataset_verdict([ks, cats], correction="bonferroni", share_threshold=0.5)
    assert verdict.drifted.tolist() == [True, True, False, False, True]
    assert verdict.insufficient.tolist() == [False, False, False, True, False]
    assert verdict.share == pytest.approx(3 / 4)
    assert verdict.dataset_drift
    assert verdict.statistic_names == ("ks", "ks", "ks", "ks", "chi2")
    # the correction counted 4 tested features, not the insufficient one
    assert verdict.score[0] == pytest.approx(min(1.0, ks.pvalue[0] * 4))


def test_distance_verdict_uses_registry_thresholds_unless_given():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(3000, 2))
    cur = np.column_stack([rng.normal(size=3000), rng.normal(0.6, size=3000)])
    result = psi(ref, cur)
    default = dataset_verdict(result)
    assert default.threshold.tolist() == [get_statistic("psi").default_threshold] * 2
    assert default.drifted.tolist() == [False, True]
    assert not dataset_verdict(result, share_threshold=0.75).dataset_drift
    assert dataset_verdict(result, thresholds={"psi": 1e-9}).drifted.all()


def test_verdict_with_nothing_evaluated():
    nothing = ks_2samp(np.ones(5), np.full(3, np.nan))
    verdict = dataset_verdict(nothing)
    assert np.isnan(verdict.share)
    assert not verdict.dataset_drift
    with pytest.raises(ValueError, match="at least one"):
        dataset_verdict([])


def test_unknown_statistic_lists_the_known_ones():
    with pytest.raises(DetectorInputError, match="known: chi2, hellinger"):
        get_statistic("kl")


def test_result_to_dict_is_plain_json():
    result = ks_2samp(np.arange(10.0), np.array([np.nan] * 3), names=["a"])
    data = result.to_dict()
    assert data["statistic"] == [None]
    assert data["insufficient"] == [True]
    assert data["names"] == ["a"]
    assert isinstance(result, DriftResult)
    assert len(result) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.ones((2, 2, 2)), "3-D"),
        (np.empty((0, 3)), "empty"),
        (np.array([[1 + 2j]]), "complex"),
        (np.array([["a"]]), "non-numeric"),
        (pl.DataFrame({"s": ["x"]}), "non-numeric"),
    ],
)
def test_numeric_input_rules(data, message):
    with pytest.raises(DetectorInputError, match=message):
        ks_2samp(data, np.ones(3))


def test_object_columns_with_none_are_missing_values():
    ref = np.array([[1.0], [None], [3.0]], dtype=object)
    result = ks_2samp(ref, np.array([1.0, 2.0]))
    assert result.nulls_reference.tolist() == [1]
    assert result.n_reference.tolist() == [2]


def test_polars_nulls_are_missing_values_and_names_come_from_the_frame():
    ref = pl.DataFrame({"a": [1.0, None, 3.0], "b": [1, 2, 3]})
    result = ks_2samp(ref, pl.DataFrame({"a": [1.0, 2.0], "b": [4, 5]}))
    assert result.names == ("a", "b")
    assert result.nulls_reference.tolist() == [1, 0]


def test_min_samples_must_be_positive():
    with pytest.raises(ValueError, match="min_samples"):
        ks_2samp(np.ones(3), np.ones(3), min_samples=0)
