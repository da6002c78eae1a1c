import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    root_mean_squared_error,
)

from detectors.errors import DetectorInputError
from detectors.regression import RegressionAccumulator, regression_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_without_zero_targets(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.lognormal(3.0, 1.0, size=1000) * rng.choice([-1, 1], size=1000)
    y_pred = y_true + rng.normal(0.0, 5.0, size=1000)
    metrics = regression_metrics(RegressionAccumulator.empty().update(y_true, y_pred))
    assert metrics.n == 1000
    assert metrics.mae == pytest.approx(mean_absolute_error(y_true, y_pred), rel=1e-12)
    assert metrics.rmse == pytest.approx(root_mean_squared_error(y_true, y_pred), rel=1e-12)
    assert metrics.rmse == pytest.approx(math.sqrt(mean_squared_error(y_true, y_pred)))
    assert metrics.mape == pytest.approx(mean_absolute_percentage_error(y_true, y_pred), rel=1e-12)
    assert metrics.n_zero_target == 0
    assert not metrics.insufficient
    assert not metrics.mape_insufficient


def test_zero_targets_are_left_out_of_mape_and_counted():
    rng = np.random.default_rng(7)
    y_true = rng.normal(10.0, 3.0, size=200)
    y_true[::10] = 0.0
    y_pred = y_true + rng.normal(0.0, 1.0, size=200)
    metrics = regression_metrics(RegressionAccumulator.empty().update(y_true, y_pred))
    nonzero = y_true != 0
    expected = np.mean(np.abs(y_pred[nonzero] - y_true[nonzero]) / np.abs(y_true[nonzero]))
    assert metrics.mape == pytest.approx(expected, rel=1e-12)
    assert metrics.n_zero_target == 20
    assert metrics.n_mape == 180
    assert metrics.mae == pytest.approx(np.mean(np.abs(y_pred - y_true)), rel=1e-12)


def test_every_target_zero_gives_nan_mape():
    metrics = regression_metrics(RegressionAccumulator.empty().update([0.0, -0.0], [1.0, 2.0]))
    assert metrics.mape_insufficient
    assert np.isnan(metrics.mape)
    assert metrics.mae == 1.5
    assert metrics.rmse == pytest.approx(math.sqrt(2.5))


def test_nan_pairs_are_dropped_and_counted():
    acc = RegressionAccumulator.empty().update([1.0, np.nan, 3.0, 4.0], [1.0, 2.0, np.nan, 5.0])
    assert (acc.n, acc.n_dropped) == (2, 2)
    metrics = regression_metrics(acc)
    assert metrics.n_dropped == 2
    assert metrics.mae == 0.5


def test_no_data_gives_nan_and_insufficient():
    metrics = regression_metrics(RegressionAccumulator.empty().update([np.nan], [1.0]))
    assert metrics.insufficient
    assert metrics.mape_insufficient
    assert np.isnan([metrics.mae, metrics.rmse, metrics.mape]).all()


def test_merge_equals_accumulating_the_concatenation():
    rng = np.random.default_rng(8)
    y_true, y_pred = rng.normal(5, 2, size=(2, 300))
    y_true[::7] = 0.0
    y_pred[::11] = np.nan
    empty = RegressionAccumulator.empty()
    merged = empty.update(y_true[:100], y_pred[:100]).merge(
        empty.update(y_true[100:], y_pred[100:])
    )
    whole = empty.update(y_true, y_pred)
    assert (merged.n, merged.n_dropped, merged.n_zero_target) == (
        whole.n,
        whole.n_dropped,
        whole.n_zero_target,
    )
    for name in ("sum_abs_error", "sum_squared_error", "sum_abs_pct_error"):
        assert getattr(merged, name) == pytest.approx(getattr(whole, name), rel=1e-12)


def test_json_round_trip():
    acc = RegressionAccumulator.empty().update([1.0, 0.0, 3.0], [2.0, 1.0, 3.5])
    restored = RegressionAccumulator.from_dict(json.loads(json.dumps(acc.to_dict())))
    assert restored == acc


@pytest.mark.parametrize(
    "data",
    [
        {"n": 1},
        {**RegressionAccumulator().to_dict(), "n": -1},
        {**RegressionAccumulator().to_dict(), "n": 1.5},
        {**RegressionAccumulator().to_dict(), "sum_abs_error": -1.0},
        {**RegressionAccumulator().to_dict(), "sum_abs_error": "1"},
        {**RegressionAccumulator().to_dict(), "n_zero_target": 2},
        [],
    ],
)
def test_from_dict_refuses_malformed_data(data):
    with pytest.raises(DetectorInputError):
        RegressionAccumulator.from_dict(data)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "column"),
    [
        ([1.0, 2.0], [1.0], "y_pred"),
        ([], [], "y_true"),
        ([[1.0]], [[1.0]], "y_true"),
        (["a", "b"], [1.0, 2.0], "y_true"),
        ([1.0, 2.0], np.array([1j, 2.0]), "y_pred"),
        ([1.0, 2.0], [1.0, np.inf], "y_pred"),
    ],
)
def test_bad_input_is_refused_naming_the_column(y_true, y_pred, column):
    with pytest.raises(DetectorInputError) as info:
        RegressionAccumulator.empty().update(y_true, y_pred)
    assert info.value.column == column


def test_inputs_are_not_mutated():
    y_true = np.array([1.0, np.nan, 0.0, 4.0])
    y_pred = np.array([2.0, 1.0, 1.0, 4.0])
    for array in (y_true, y_pred):
        array.setflags(write=False)
    RegressionAccumulator.empty().update(y_true, y_pred)
    np.testing.assert_array_equal(y_true, [1.0, np.nan, 0.0, 4.0])
    np.testing.assert_array_equal(y_pred, [2.0, 1.0, 1.0, 4.0])
