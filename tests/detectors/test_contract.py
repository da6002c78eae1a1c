"""One contract, run over every registered statistic and every feature type it accepts.

Shapes, NaN policy, determinism, inputs never mutated, insufficient windows, bad input,
sketch = batch where the sketch is exact, and agreement with the peer oracle per column.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from detectors import (
    STATISTICS,
    DetectorInputError,
    ReferenceProfile,
    WindowSketch,
    get_statistic,
)
from tests.detectors.oracles import ORACLES

CASES = [(name, kind) for name, spec in STATISTICS.items() for kind in sorted(spec.feature_types)]
SINGLE_TYPE = [(name, kind) for name, kind in CASES if len(STATISTICS[name].feature_types) == 1]


def test_every_registered_statistic_and_type_has_an_oracle():
    assert set(CASES) == set(ORACLES)


def numeric_data(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(400, 4))
    cur = rng.normal(size=(300, 4))
    cur[:, 1] += 0.5  # drift
    cur[:, 2] = np.round(cur[:, 2] * 2) / 2  # ties
    ref[:, 3] = rng.integers(0, 4, size=400)  # few distinct values: value bins
    cur[:, 3] = rng.integers(0, 5, size=300)  # one value unseen in the reference
    ref[[3, 50], 0] = np.nan
    cur[[7], 2] = np.nan
    return ref, cur


def categorical_data(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.choice(["a", "b", "c", "d"], size=(400, 3)).astype(object)
    cur = rng.choice(["a", "b", "c", "e"], size=(300, 3), p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    ref[5, 0] = None
    cur[[1, 2], 1] = None
    return ref, cur


def data_for(kind: str):
    return numeric_data() if kind == "numeric" else categorical_data()


def run(name: str, kind: str, ref, cur, **kw):
    return get_statistic(name).batch(ref, cur, categorical=kind == "categorical", **kw)


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_agrees_with_its_oracle_per_column(name, kind):
    ref, cur = data_for(kind)
    result = run(name, kind, ref, cur)
    oracle = ORACLES[(name, kind)]
    for j in range(ref.shape[1]):
        expected = oracle(ref[:, j], cur[:, j])
        if isinstance(expected, tuple):
            statistic, pvalue = expected
            assert result.statistic[j] == pytest.approx(statistic, rel=1e-9, abs=1e-12)
            if name != "ks":  # KS p-values: see test_ks (the default method is not scipy's)
                assert result.pvalue[j] == pytest.approx(pvalue, rel=1e-9, abs=1e-300)
        else:
            assert result.statistic[j] == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_shapes_names_and_counts(name, kind):
    ref, cur = data_for(kind)
    names = [f"f{j}" for j in range(ref.shape[1])]
    result = run(name, kind, ref, cur, names=names)
    k = ref.shape[1]
    assert result.names == tuple(names)
    assert result.name == name
    for field in ("statistic", "n_reference", "n_current", "nulls_reference", "insufficient"):
        assert getattr(result, field).shape == (k,)
    assert (result.pvalue is not None) == get_statistic(name).is_test
    if kind == "numeric":
        np.testing.assert_array_equal(result.nulls_reference, np.isnan(ref).sum(axis=0))
        np.testing.assert_array_equal(result.n_current, (~np.isnan(cur)).sum(axis=0))
    else:
        np.testing.assert_array_equal(result.nulls_current, (cur == None).sum(axis=0))  # noqa: E711


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_nan_is_dropped_never_propagated(name, kind):
    ref, cur = data_for(kind)
    result = run(name, kind, ref, cur)
    assert np.isfinite(result.statistic).all()
    if result.pvalue is not None:
        assert np.isfinite(result.pvalue).all()


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_deterministic_and_inputs_not_mutated(name, kind):
    ref, cur = data_for(kind)
    ref_copy, cur_copy = ref.copy(), cur.copy()
    if kind == "numeric":
        ref.setflags(write=False)
        cur.setflags(write=False)
    first = run(name, kind, ref, cur)
    second = run(name, kind, ref, cur)
    np.testing.assert_array_equal(first.statistic, second.statistic)
    np.testing.assert_array_equal(ref, ref_copy)
    np.testing.assert_array_equal(cur, cur_copy)
    with pytest.raises(ValueError, match="read-only"):
        first.statistic[0] = 1.0


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_window_below_minimum_is_insufficient_not_noisy(name, kind):
    ref, cur = data_for(kind)
    result = run(name, kind, ref, cur[:5], min_samples=10)
    assert result.insufficient.all()
    assert np.isnan(result.statistic).all()
    assert run(name, kind, ref, cur[:5], min_samples=5).insufficient.sum() <= 1


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_a_column_of_only_missing_values_is_insufficient(name, kind):
    ref, cur = data_for(kind)
    cur = cur.copy()
    cur[:, 0] = np.nan if kind == "numeric" else None
    result = run(name, kind, ref, cur)
    assert result.insufficient.tolist() == [True] + [False] * (ref.shape[1] - 1)
    assert np.isnan(result.statistic[0])
    assert np.isfinite(result.statistic[1:]).all()


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_n_equal_one_on_both_sides(name, kind):
    one = np.array([[1.0]]) if kind == "numeric" else np.array([["a"]], dtype=object)
    other = np.array([[2.0]]) if kind == "numeric" else np.array([["b"]], dtype=object)
    same = run(name, kind, one, one)
    different = run(name, kind, one, other)
    assert same.statistic[0] == pytest.approx(0.0, abs=1e-12)
    assert different.statistic[0] > 0
    assert not different.insufficient[0]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_identical_samples_show_no_drift(name, kind):
    ref, _ = data_for(kind)
    result = run(name, kind, ref, ref)
    np.testing.assert_allclose(result.statistic, 0.0, atol=1e-12)
    if result.pvalue is not None:
        np.testing.assert_allclose(result.pvalue, 1.0)


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_bad_input_raises_a_detector_input_error(name, kind):
    ref, cur = data_for(kind)
    with pytest.raises(DetectorInputError, match="features"):
        run(name, kind, ref, cur[:, :2])
    with pytest.raises(DetectorInputError, match="empty"):
        run(name, kind, ref, cur[:0])
    with pytest.raises(DetectorInputError, match="empty"):
        run(name, kind, ref[:0], cur)
    with pytest.raises(DetectorInputError, match="3-D"):
        run(name, kind, ref[None], cur)


@pytest.mark.parametrize(("name", "kind"), SINGLE_TYPE)
def test_a_statistic_refuses_the_feature_type_it_does_not_take(name, kind):
    other = "categorical" if kind == "numeric" else "numeric"
    ref, cur = data_for(other)
    with pytest.raises(DetectorInputError):
        run(name, other, ref, cur)


@pytest.mark.parametrize("name", ["ks", "psi", "wasserstein_normed"])
def test_text_in_a_numeric_column_is_refused_naming_the_column(name):
    ref, cur = numeric_data()
    cur = cur.astype(object)
    cur[3, 1] = "12.5"
    with pytest.raises(DetectorInputError, match="non-numeric") as info:
        run(name, "numeric", ref, cur, names=["a", "b", "c", "d"])
    assert info.value.column == "b"


@pytest.mark.parametrize("name", [n for n, s in STATISTICS.items() if "numeric" in s.feature_types])
def test_infinity_is_refused_naming_the_column(name):
    ref, cur = numeric_data()
    cur = cur.copy()
    cur[4, 2] = np.inf
    with pytest.raises(DetectorInputError, match="speed") as info:
        run(name, "numeric", ref, cur, names=["a", "b", "speed", "d"])
    assert info.value.column == "speed"


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_sketch_agrees_with_batch(name, kind):
    ref, cur = data_for(kind)
    names = [f"f{j}" for j in range(ref.shape[1])]
    frame = {n: ref[:, j] for j, n in enumerate(names)}
    profile = ReferenceProfile.fit(
        frame, **({"numeric": names} if kind == "numeric" else {"categorical": names})
    )
    half = cur.shape[0] // 2
    sketch = WindowSketch.empty(profile).update({n: cur[:half, j] for j, n in enumerate(names)})
    other = WindowSketch.empty(profile).update({n: cur[half:, j] for j, n in enumerate(names)})
    spec = get_statistic(name)
    from_sketch = spec.sketch(sketch.merge(other), categorical=kind == "categorical")
    batch = run(name, kind, ref, cur, names=names)
    if from_sketch.error_bound is None:
        np.testing.assert_allclose(from_sketch.statistic, batch.statistic, rtol=1e-12, atol=1e-15)
        if batch.pvalue is not None:
            np.testing.assert_allclose(from_sketch.pvalue, batch.pvalue, rtol=1e-9)
    else:
        gap = batch.statistic - from_sketch.statistic
        assert (np.abs(gap) <= from_sketch.error_bound + 1e-12).all()
    np.testing.assert_array_equal(from_sketch.n_current, batch.n_current)
    np.testing.assert_array_equal(from_sketch.nulls_current, batch.nulls_current)


def test_polars_input_gives_the_same_numbers_and_names():
    ref, cur = numeric_data()
    names = ["a", "b", "c", "d"]
    ref_frame = pl.DataFrame(dict(zip(names, ref.T, strict=True)))
    cur_frame = pl.DataFrame(dict(zip(names, cur.T, strict=True)))
    for spec in STATISTICS.values():
        if "numeric" not in spec.feature_types:
            continue
        from_frames = spec.batch(ref_frame, cur_frame)
        from_arrays = spec.batch(ref, cur)
        assert from_frames.names == tuple(names)
        np.testing.assert_array_equal(from_frames.statistic, from_arrays.statistic)
