import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from detectors import (
    PROFILE_VERSION,
    DetectorInputError,
    ReferenceProfile,
    WindowSketch,
    chi2,
    ks_2samp,
    psi,
    quantile_binning,
    sketch_chi2,
    sketch_ks,
    sketch_psi,
    sketch_wasserstein,
    wasserstein,
)
from detectors.binning import bin_index
from detectors.sketch import MAX_UNSEEN, OTHER_CATEGORY

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def frame(seed=0, rows=2000, shift=0.0):
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "x": rng.normal(shift, 1, rows),
            "y": rng.exponential(1, rows),
            "k": rng.integers(0, 3, rows).astype(float),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "flag": rng.random(rows) < 0.3,
        }
    )


def test_fit_splits_numeric_and_categorical_columns_by_dtype():
    profile = ReferenceProfile.fit(frame())
    assert profile.numeric == ("x", "y", "k")
    assert profile.categorical == ("colour", "flag")
    assert profile.vocabulary == (("blue", "green", "red"), ("false", "true"))
    assert profile.coarse.by_value.tolist() == [False, False, True]
    assert profile.n.tolist() == [2000, 2000, 2000]
    assert profile.fine.n_bins[0] == 1000


def test_profile_round_trips_through_json():
    profile = ReferenceProfile.fit(frame())
    data = json.loads(json.dumps(profile.to_dict()))
    assert data["version"] == PROFILE_VERSION
    back = ReferenceProfile.from_dict(data)
    assert back.to_dict() == profile.to_dict()
    np.testing.assert_array_equal(back.fine_counts, profile.fine_counts)


def test_profile_of_another_version_is_refused():
    data = ReferenceProfile.fit(frame()).to_dict() | {"version": PROFILE_VERSION + 1}
    with pytest.raises(DetectorInputError, match="version"):
        ReferenceProfile.from_dict(data)


def test_fit_refuses_unknown_or_doubly_typed_columns_and_empty_data():
    with pytest.raises(DetectorInputError, match="nope"):
        ReferenceProfile.fit(frame(), numeric=["x", "nope"])
    with pytest.raises(DetectorInputError, match="both"):
        ReferenceProfile.fit(frame(), numeric=["x"], categorical=["x"])
    with pytest.raises(DetectorInputError, match="empty"):
        ReferenceProfile.fit(frame().head(0))


def test_sketch_statistics_equal_the_batch_functions_on_the_same_data():
    profile = ReferenceProfile.fit(frame(0))
    current = frame(1, rows=1500, shift=0.4)
    sketch = WindowSketch.empty(profile).update(current)
    numeric = ["x", "y", "k"]
    np.testing.assert_allclose(
        sketch_psi(sketch).statistic,
        psi(frame(0).select(numeric), current.select(numeric)).statistic,
        rtol=1e-12,
    )
    categorical = ["colour", "flag"]
    batch = chi2(frame(0).select(categorical), current.select(categorical))
    np.testing.assert_allclose(sketch_chi2(sketch).statistic, batch.statistic, rtol=1e-12)
    np.testing.assert_allclose(sketch_chi2(sketch).pvalue, batch.pvalue, rtol=1e-9)


def test_merge_equals_one_sketch_of_all_rows_and_mean_std_match():
    profile = ReferenceProfile.fit(frame(0))
    current = frame(2, rows=999, shift=1.0)
    whole = WindowSketch.empty(profile).update(current)
    parts = [WindowSketch.empty(profile).update(current.slice(i, 333)) for i in (0, 333, 666)]
    merged = parts[0].merge(parts[1]).merge(parts[2]).to_dict()
    expected = whole.to_dict()
    for key in ("total", "total_squares"):  # float sums: equal up to summation order
        np.testing.assert_allclose(merged.pop(key), expected.pop(key), rtol=1e-12)
    assert merged == expected
    np.testing.assert_allclose(whole.mean(), current.select(["x", "y", "k"]).mean().row(0))
    np.testing.assert_allclose(
        whole.std(), [np.std(current[c].to_numpy()) for c in ("x", "y", "k")], rtol=1e-9
    )


def test_sketch_round_trips_and_refuses_a_foreign_profile():
    profile = ReferenceProfile.fit(frame(0))
    sketch = WindowSketch.empty(profile).update(frame(3, rows=50))
    back = WindowSketch.from_dict(profile, json.loads(json.dumps(sketch.to_dict())))
    assert back.to_dict() == sketch.to_dict()
    other = ReferenceProfile.fit(frame(9))
    with pytest.raises(DetectorInputError, match="different profiles"):
        sketch.merge(WindowSketch.empty(other))


def test_update_refuses_bad_batches_without_counting_anything():
    profile = ReferenceProfile.fit(frame(0))
    sketch = WindowSketch.empty(profile).update(frame(1, rows=10))
    before = sketch.to_dict()
    with pytest.raises(DetectorInputError, match="colour"):
        sketch.update(frame(1, rows=10).drop("colour"))
    bad = frame(1, rows=10).with_columns(pl.lit(float("inf")).alias("y"))
    with pytest.raises(DetectorInputError, match="y"):
        sketch.update(bad)
    assert sketch.to_dict() == before
    assert sketch.update(frame(1).head(0)).to_dict() == before


@pytest.mark.parametrize("rows", [1, 700, 2048, 2049, 6000])
def test_a_mapping_of_columns_counts_as_the_same_rows_in_a_frame(rows):
    """Mapping batches (the engine's: text or None categories, few or many rows) count the same.

    Also a category column of mixed types (numbers, booleans, NaN) in a mapping, which is
    coerced as a frame's would be.
    """
    profile = ReferenceProfile.fit(frame(0))
    current = frame(4, rows=rows, shift=0.5)
    colour = current["colour"].to_numpy().astype(object)
    colour[::7] = None
    colour[::11] = "purple"  # never in the reference
    current = current.with_columns(pl.Series("colour", colour.tolist(), dtype=pl.String))
    current = current.with_columns(pl.col("x").fill_nan(None).alias("x"))
    mapping = {c: current[c].to_numpy() for c in ("x", "y", "k")}
    mapping["x"] = np.where(np.arange(rows) % 5 == 0, np.nan, mapping["x"])
    from_frame = WindowSketch.empty(profile).update(
        current.with_columns(pl.Series("x", mapping["x"]).fill_nan(None))
    )
    flag = current["flag"].to_numpy()
    text = WindowSketch.empty(profile).update(
        mapping | {"colour": colour, "flag": np.where(flag, "true", "false").astype(object)}
    )
    assert text.to_dict() == from_frame.to_dict()
    mixed_flag = flag.astype(object)
    mixed_flag[::3] = np.nan  # missing, as None is
    mixed = (
        WindowSketch.empty(profile)
        .update(mapping | {"colour": colour, "flag": mixed_flag})
        .to_dict()
    )
    kept = np.arange(rows) % 3 != 0
    assert mixed["category_nulls"][1] == rows - kept.sum()
    # booleans become text as str() writes them, like a frame's object column would
    true = int(flag[kept].sum())
    assert mixed["unseen"][1] == {
        k: v for k, v in (("True", true), ("False", kept.sum() - true)) if v
    }


def test_unseen_categories_are_kept_by_name_then_pooled():
    profile = ReferenceProfile.fit(pl.DataFrame({"c": ["a", "b"] * 5}))
    sketch = WindowSketch.empty(profile)
    sketch.update({"c": np.array([f"new{i}" for i in range(MAX_UNSEEN + 5)] + ["a"])})
    assert len(sketch.unseen[0]) == MAX_UNSEEN + 1
    assert sketch.unseen[0][OTHER_CATEGORY] == 5
    assert sketch.unseen_overflow.tolist() == [True]
    assert sketch.category_counts[0].tolist() == [1, 0]


def test_the_shared_data_drift_is_found_and_the_controls_stay_quiet():
    reference = pl.read_parquet(DATA / "car_loan_reference.parquet")
    analysis = pl.read_parquet(DATA / "car_loan_analysis.parquet")
    features = reference.drop(["id", "timestamp", "y_pred", "repaid"])
    profile = ReferenceProfile.fit(features)
    before = WindowSketch.empty(profile).update(analysis.slice(0, 5000))
    after = WindowSketch.empty(profile).update(analysis.slice(30_000, 5000))
    drifting = {"car_value", "loan_length", "y_pred_proba"}
    for sketch, expect in ((before, set()), (after, drifting)):
        result = sketch_ks(sketch)
        flagged = {n for n, p in zip(result.names, result.pvalue, strict=True) if p < 1e-3}
        assert flagged == expect
    categorical = sketch_chi2(after)
    flagged = {n for n, p in zip(categorical.names, categorical.pvalue, strict=True) if p < 1e-3}
    assert flagged == {"salary_range", "repaid_loan_on_prev_car"}


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    reference=hnp.arrays(np.float64, st.integers(2, 400), elements=finite),
    current=hnp.arrays(np.float64, st.integers(1, 300), elements=finite),
    shift=st.floats(-3, 3),
)
def test_sketch_ks_and_wasserstein_stay_within_their_error_bounds(reference, current, shift):
    current = current * 0.5 + shift
    profile = ReferenceProfile.fit({"v": reference}, numeric=["v"], fine_bins=100)
    sketch = WindowSketch.empty(profile).update({"v": current})
    exact_ks = ks_2samp(reference, current).statistic[0]
    approx = sketch_ks(sketch)
    assert approx.statistic[0] <= exact_ks + 1e-12
    assert exact_ks <= approx.statistic[0] + approx.error_bound[0] + 1e-12
    exact_w = wasserstein(reference, current).statistic[0]
    approx_w = sketch_wasserstein(sketch)
    slack = 1e-9 * max(1.0, exact_w)
    assert abs(exact_w - approx_w.statistic[0]) <= approx_w.error_bound[0] + slack


@settings(max_examples=80, deadline=None)
@given(
    reference=hnp.arrays(
        np.float64,
        st.integers(40, 600),
        elements=st.one_of(finite, st.sampled_from([0.0, 1.0, -2.5]), st.floats(-1e-3, 1e-3)),
    ),
    probes=hnp.arrays(np.float64, st.integers(1, 200), elements=finite),
)
def test_lookup_table_binning_is_exactly_a_binary_search(reference, probes):
    binning = quantile_binning(reference[:, None], 200)
    edges = binning.edges[0]
    probes = np.concatenate([probes, edges, np.nextafter(edges, np.inf), [np.nan]])
    got = bin_index(probes[:, None], binning)[:, 0]
    expected = np.searchsorted(edges, probes, side="right")
    expected[np.isnan(probes)] = -1
    np.testing.assert_array_equal(got, expected)


def test_the_lookup_takes_a_finer_grid_when_it_saves_steps():
    # normal quantiles: 2 edges per cell at 2 and 4 cells per edge, 1 from 8 on
    binning = quantile_binning(np.random.default_rng(1).normal(size=(20_000, 1)), 1000)
    lookup = binning._lookups[0]
    assert lookup is not None
    assert (lookup.steps, lookup.cells) == (1, 8 * binning.edges[0].size)
    probes = np.concatenate([binning.edges[0], np.nextafter(binning.edges[0], -np.inf)])
    np.testing.assert_array_equal(
        lookup.search(probes), np.searchsorted(binning.edges[0], probes, side="right")
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.sampled_from([1, 7, 1000, 2048, 2049, 5000]))
def test_features_searched_together_get_each_its_own_binary_search(seed, rows):
    """Several features through the stacked grid (few rows) or one by one (many): the same bins.

    Features differ in scale (so in cells and steps per cell); one has value bins, one too
    few edges for a grid and one is heavy-tailed (no grid): those are searched on their own.
    """
    rng = np.random.default_rng(seed)
    reference = np.column_stack(
        [
            rng.normal(0, 1, 20_000),
            rng.normal(5e3, 1e-3, 20_000),
            rng.exponential(2.0, 20_000),
            rng.integers(0, 5, 20_000).astype(float),
            rng.lognormal(0, 4, 20_000),
            rng.uniform(-1, 1, 20_000),
        ]
    )
    reference[rng.random(reference.shape) < 0.05] = np.nan
    binning = quantile_binning(reference, 1000, by_value_up_to=10)
    assert binning._grid is not None
    assert 2 <= binning._grid.features.size < 6
    probes = reference[rng.integers(0, 20_000, rows)] + rng.normal(0, 1e-3, (rows, 6))
    probes[rng.random(probes.shape) < 0.1] = np.nan
    got = bin_index(probes, binning)
    for j, edges in enumerate(binning.edges):
        if binning.by_value[j]:
            continue  # value bins: their own rule, tested elsewhere
        expected = np.searchsorted(edges, probes[:, j], side="right")
        expected[np.isnan(probes[:, j])] = -1
        np.testing.assert_array_equal(got[:, j], expected)


def test_heavy_tailed_features_fall_back_to_binary_search_and_stay_exact():
    rng = np.random.default_rng(0)
    reference = rng.lognormal(0, 4, size=(20_000, 1))
    binning = quantile_binning(reference, 1000)
    assert binning._lookups[0] is None
    probes = rng.lognormal(0, 4, size=(5000, 1))
    np.testing.assert_array_equal(
        bin_index(probes, binning)[:, 0], np.searchsorted(binning.edges[0], probes[:, 0], "right")
    )


def test_select_keeps_the_fitted_bins_and_counts_of_the_chosen_features():
    rng = np.random.default_rng(3)
    data = {
        "a": rng.normal(size=500),
        "b": rng.integers(0, 4, 500).astype(float),  # value bins
        "c": rng.exponential(size=500),
        "k": rng.choice(["u", "v", "w"], 500),
        "m": rng.choice(["p", "q"], 500),
    }
    full = ReferenceProfile.fit(data)
    sub = full.select(["c", "b"], ["m"])
    alone = ReferenceProfile.fit({"c": data["c"], "b": data["b"], "m": data["m"]},
                                 numeric=["c", "b"], categorical=["m"])  # fmt: skip
    assert sub.to_dict() == alone.to_dict()
    assert full.select(full.numeric, full.categorical) is full
    with pytest.raises(DetectorInputError, match="not in the reference profile"):
        full.select(["zzz"], [])
