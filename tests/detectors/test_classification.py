import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from detectors.classification import ConfusionCounts, classification_metrics
from detectors.errors import DetectorInputError


def _readonly(array):
    array = np.array(array)
    array.setflags(write=False)
    return array


def _assert_matches_sklearn(counts, y_true, y_pred, classes):
    metrics = classification_metrics(counts)
    assert metrics.n == len(y_true)
    assert metrics.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=0
    )
    np.testing.assert_allclose(metrics.precision, p)
    np.testing.assert_allclose(metrics.recall, r)
    np.testing.assert_allclose(metrics.f1, f)
    np.testing.assert_array_equal(metrics.support, s)
    mp, mr, mf, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average="macro", zero_division=0
    )
    assert metrics.macro_precision == pytest.approx(mp)
    assert metrics.macro_recall == pytest.approx(mr)
    assert metrics.macro_f1 == pytest.approx(mf)
    assert not metrics.insufficient


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_random_integer_labels(seed):
    rng = np.random.default_rng(seed)
    classes = [0, 1, 2, 3, 4]
    y_true = rng.integers(0, 5, size=500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 5, size=500))
    counts = ConfusionCounts.empty(classes).update(y_true, y_pred)
    _assert_matches_sklearn(counts, y_true, y_pred, classes)


def test_class_never_predicted_and_class_never_seen():
    rng = np.random.default_rng(3)
    classes = [0, 1, 2, 7]
    y_true = rng.integers(0, 3, size=300)  # class 7 never appears at all
    y_pred = np.where(y_true == 2, 1, y_true)  # class 2 is never predicted
    counts = ConfusionCounts.empty(classes).update(y_true, y_pred)
    _assert_matches_sklearn(counts, y_true, y_pred, classes)
    metrics = classification_metrics(counts)
    assert metrics.precision[2] == 0.0
    assert metrics.recall[2] == 0.0
    assert metrics.f1[3] == 0.0
    assert metrics.support[3] == 0


def test_string_labels():
    rng = np.random.default_rng(4)
    classes = ["cat", "dog", "emu"]
    y_true = rng.choice(classes, size=400)
    y_pred = np.where(rng.random(400) < 0.7, y_true, rng.choice(classes, size=400))
    counts = ConfusionCounts.empty(classes).update(y_true, y_pred)
    _assert_matches_sklearn(counts, y_true, y_pred, classes)


def test_text_labels_are_compared_exactly():
    # numpy text arrays drop trailing NULs: "a\0" must neither be "a" nor match it
    counts = ConfusionCounts.empty(["a", "a\0", "b"]).update(
        np.array(["a", "a\0", "a\0", "b ", "b"], dtype=object),
        np.array(["a", "a", "a\0", "b", "b"], dtype=object),
    )
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[0, 0] = expected[1, 0] = expected[1, 1] = expected[2, 2] = expected[3, 2] = 1
    np.testing.assert_array_equal(counts.matrix, expected)
    assert counts.unknown_true == 1  # "b " is outside the vocabulary


def test_labels_outside_the_vocabulary_are_counted_per_side():
    rng = np.random.default_rng(5)
    classes = [0, 1, 2]
    y_true = rng.integers(0, 3, size=300)
    y_pred = y_true.copy()
    y_true[:20] = 99  # unknown true labels
    y_pred[20:50] = 98  # unknown predictions, never equal to an unknown true label
    counts = ConfusionCounts.empty(classes).update(y_true, y_pred)
    assert counts.unknown_true == 20
    assert counts.unknown_pred == 30
    _assert_matches_sklearn(counts, y_true, y_pred, classes)
    metrics = classification_metrics(counts)
    assert (metrics.unknown_true, metrics.unknown_pred) == (20, 30)


def test_missing_labels_are_unknown():
    counts = ConfusionCounts.empty(["a", "b"]).update(
        np.array(["a", None, "b"], dtype=object), ["a", "a", "zzz"]
    )
    assert counts.unknown_true == 1
    assert counts.unknown_pred == 1
    floats = ConfusionCounts.empty([1, 2]).update([1.0, np.nan, 2.5, 2.0], [1, 1, 2, 2])
    assert floats.unknown_true == 2
    assert classification_metrics(floats).accuracy == 0.5
    objects = ConfusionCounts.empty([1, 2]).update(np.array([1, None], dtype=object), [1, 2])
    assert objects.unknown_true == 1


def test_merge_equals_counts_of_concatenated_data():
    rng = np.random.default_rng(6)
    classes = ["x", "y", "z"]
    a_true, b_true = rng.choice(classes, 200), rng.choice([*classes, "w"], 150)
    a_pred, b_pred = rng.choice(classes, 200), rng.choice(classes, 150)
    empty = ConfusionCounts.empty(classes)
    merged = empty.update(a_true, a_pred).merge(empty.update(b_true, b_pred))
    whole = empty.update(np.r_[a_true, b_true], np.r_[a_pred, b_pred])
    np.testing.assert_array_equal(merged.matrix, whole.matrix)
    assert merged.n == 350


def test_merge_requires_the_same_vocabulary():
    with pytest.raises(DetectorInputError, match="merge"):
        ConfusionCounts.empty([0, 1]).merge(ConfusionCounts.empty([1, 0]))


def test_json_round_trip():
    counts = ConfusionCounts.empty(["a", "b"]).update(["a", "b", "q"], ["b", "b", "a"])
    restored = ConfusionCounts.from_dict(json.loads(json.dumps(counts.to_dict())))
    assert restored.classes == ("a", "b")
    np.testing.assert_array_equal(restored.matrix, counts.matrix)
    ints = ConfusionCounts.empty(np.array([3, 1])).update([1, 3], [3, 3])
    assert ConfusionCounts.from_dict(json.loads(json.dumps(ints.to_dict()))).classes == (3, 1)


@pytest.mark.parametrize(
    "data",
    [
        {"classes": [0, 1]},
        {"classes": [0, 1], "matrix": [[0.5] * 3] * 3},
        {"classes": [0, 1], "matrix": [[0] * 2] * 2},
        {"classes": [0, 1], "matrix": [[-1] * 3] * 3},
        None,
    ],
)
def test_from_dict_refuses_malformed_data(data):
    with pytest.raises(DetectorInputError):
        ConfusionCounts.from_dict(data)


def test_no_data_gives_nan_and_insufficient():
    metrics = classification_metrics(ConfusionCounts.empty([0, 1]))
    assert metrics.insufficient
    assert metrics.n == 0
    assert np.isnan(metrics.accuracy)
    assert np.isnan(metrics.macro_f1)
    assert np.isnan(metrics.precision).all()


@pytest.mark.parametrize(
    "classes", [[], "ab", [0, 0], [0, "a"], [True, False], [1.5, 2.5], [[0, 1]]]
)
def test_bad_vocabulary_is_refused(classes):
    with pytest.raises(DetectorInputError):
        ConfusionCounts.empty(classes)


@pytest.mark.parametrize(
    ("classes", "y_true", "y_pred", "column"),
    [
        ([0, 1], [0, 1], [0], "y_pred"),
        ([0, 1], [], [], "y_true"),
        ([0, 1], [[0, 1]], [[0, 1]], "y_true"),
        ([0, 1], ["0", "1"], [0, 1], "y_true"),
        ([0, 1], [0, 1], [0, np.inf], "y_pred"),
        ([0, 1], [0, 1], np.array([0, "a"], dtype=object), "y_pred"),
        ([0, 1], [0, 1], np.array([1 + 1j, 0]), "y_pred"),
        (["a"], [1, 2], ["a", "a"], "y_true"),
        (["a"], ["a", "a"], np.array(["a", 1], dtype=object), "y_pred"),
    ],
)
def test_bad_labels_are_refused_naming_the_column(classes, y_true, y_pred, column):
    with pytest.raises(DetectorInputError) as info:
        ConfusionCounts.empty(classes).update(y_true, y_pred)
    assert info.value.column == column


def test_inputs_are_not_mutated_and_results_are_read_only():
    y_true = _readonly([0, 1, 2, 2, 1])
    y_pred = _readonly([0, 2, 2, 2, 5])
    before = (y_true.copy(), y_pred.copy())
    counts = ConfusionCounts.empty([0, 1, 2]).update(y_true, y_pred)
    np.testing.assert_array_equal(y_true, before[0])
    np.testing.assert_array_equal(y_pred, before[1])
    metrics = classification_metrics(counts)
    for array in (counts.matrix, metrics.precision, metrics.recall, metrics.f1, metrics.support):
        assert not array.flags.writeable


def test_unsigned_labels_beyond_int64_are_unknown():
    big = np.array([2**63 + 5, 1], dtype=np.uint64)
    counts = ConfusionCounts.empty([1, 5]).update(big, np.array([1, 1], dtype=np.uint64))
    assert counts.unknown_true == 1
    assert counts.matrix[0, 0] == 1


def test_bool_labels_for_an_integer_vocabulary():
    counts = ConfusionCounts.empty([0, 1]).update([True, False, True], [True, True, True])
    assert classification_metrics(counts).accuracy == pytest.approx(2 / 3)
