"""Classification quality from mergeable confusion counts over a fixed class vocabulary.

:class:`ConfusionCounts` is the state a stream keeps per window (or per model, per slice):
a ``(k + 1) x (k + 1)`` matrix of counts over ``k`` declared classes plus one extra row and
column for labels outside the vocabulary. Counts from several windows or workers merge by
addition, and the metrics of merged counts equal the metrics of the concatenated data.
:func:`classification_metrics` turns counts into accuracy, per-class and macro
precision / recall / F1, with scikit-learn's ``zero_division=0`` convention.

>>> counts = ConfusionCounts.empty(["cat", "dog"]).update(
...     ["cat", "cat", "dog", "dog"], ["cat", "dog", "dog", "fox"]
... )
>>> counts.unknown_true, counts.unknown_pred
(0, 1)
>>> metrics = classification_metrics(counts)
>>> float(metrics.accuracy)
0.5
>>> metrics.recall.tolist()
[0.5, 0.5]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors._columns import readonly
from detectors.errors import DetectorInputError

Label = int | str

__all__ = ["ClassificationMetrics", "ConfusionCounts", "Label", "classification_metrics"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _vocabulary(classes: Sequence[Any]) -> tuple[Label, ...]:
    """Validate ``classes``: non-empty, unique, all integers or all strings (not bools)."""
    if isinstance(classes, str) or np.ndim(classes) != 1 or len(classes) == 0:
        raise DetectorInputError("classes must be a non-empty 1-D sequence of labels")
    values = list(classes)
    if all(isinstance(v, str) for v in values):
        vocab: tuple[Label, ...] = tuple(str(v) for v in values)
    elif all(_is_int(v) for v in values):
        vocab = tuple(int(v) for v in values)
    else:
        raise DetectorInputError("classes must be all integers or all strings (bools: use 0/1)")
    if len(set(vocab)) != len(vocab):
        raise DetectorInputError("classes contain duplicates")
    return vocab


def _object_labels(
    array: NDArray[Any], *, text: bool, column: str
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """Convert an object array of labels; ``None`` is a missing label."""
    # Object input needs one look at each element to tell its type; counting stays vectorised.
    missing = np.fromiter((v is None for v in array), dtype=bool, count=array.shape[0])
    present = array[~missing]
    if text:
        if not all(isinstance(v, str) for v in present):
            raise DetectorInputError("labels must be strings for a text vocabulary", column=column)
        # kept as objects: a numpy text array would drop trailing NULs ("a\0" -> "a")
        return np.where(missing, "", array), missing
    if not all(isinstance(v, int | float | np.integer | np.floating) for v in present):
        raise DetectorInputError("labels must be numbers for an integer vocabulary", column=column)
    out = np.where(missing, np.nan, array).astype(np.float64)
    return _numeric_labels(out, column=column)


def _numeric_labels(array: NDArray[Any], *, column: str) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """Integer or float labels for an integer vocabulary; NaN is missing, inf is refused."""
    if array.dtype.kind == "f":
        if np.isinf(array).any():
            raise DetectorInputError("labels contain an infinite value", column=column)
        return array.astype(np.float64), np.isnan(array)
    if array.dtype.kind == "u":
        too_big = array > np.iinfo(np.int64).max
        return np.where(too_big, 0, array).astype(np.int64), too_big
    return array.astype(np.int64), np.zeros(array.shape, dtype=bool)


def _labels(values: Any, *, text: bool, column: str) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """Return labels as a comparable 1-D array and the mask of missing labels."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise DetectorInputError(f"labels must be 1-D, got {array.ndim}-D", column=column)
    if array.shape[0] == 0:
        raise DetectorInputError("labels are empty", column=column)
    kind = array.dtype.kind
    if kind == "O":
        return _object_labels(array, text=text, column=column)
    if text:
        if kind != "U":
            raise DetectorInputError(
                f"labels of dtype {array.dtype} for a text vocabulary", column=column
            )
        return array, np.zeros(array.shape, dtype=bool)
    if kind not in "biuf":
        raise DetectorInputError(
            f"labels of dtype {array.dtype} for an integer vocabulary", column=column
        )
    return _numeric_labels(array, column=column)


@dataclass(frozen=True, eq=False)
class ConfusionCounts:
    """Confusion counts over a fixed vocabulary, plus counts of labels outside it.

    Attributes:
        classes: the vocabulary, ``k`` distinct labels, all ``int`` or all ``str``.
            Class ``j`` is ``classes[j]``.
        matrix: ``(k + 1) x (k + 1)`` int64 counts; ``matrix[i, j]`` is the number of rows
            whose true label is class ``i`` and predicted label is class ``j``. Index ``k``
            stands for "outside the vocabulary" (including missing labels: ``None``, ``NaN``).

    Instances are immutable: :meth:`update` and :meth:`merge` return new counts.

    """

    classes: tuple[Label, ...]
    matrix: NDArray[np.int64]

    def __post_init__(self) -> None:
        vocab = _vocabulary(self.classes)
        size = len(vocab) + 1
        matrix = np.array(self.matrix, dtype=np.int64)
        if matrix.shape != (size, size):
            raise DetectorInputError(
                f"matrix must be {size} x {size} for {len(vocab)} classes, got {matrix.shape}"
            )
        if (matrix < 0).any():
            raise DetectorInputError("matrix has negative counts")
        object.__setattr__(self, "classes", vocab)
        object.__setattr__(self, "matrix", readonly(matrix))

    @classmethod
    def empty(cls, classes: Sequence[Label]) -> ConfusionCounts:
        """Zero counts over ``classes``."""
        vocab = _vocabulary(classes)
        size = len(vocab) + 1
        return cls(vocab, np.zeros((size, size), dtype=np.int64))

    @property
    def n(self) -> int:
        """Number of (true, predicted) pairs counted, including those with unknown labels."""
        return int(self.matrix.sum())

    @property
    def unknown_true(self) -> int:
        """Rows whose true label is outside the vocabulary (or missing)."""
        return int(self.matrix[-1, :].sum())

    @property
    def unknown_pred(self) -> int:
        """Rows whose predicted label is outside the vocabulary (or missing)."""
        return int(self.matrix[:, -1].sum())

    def encode(self, labels: Any, *, column: str = "labels") -> NDArray[np.intp]:
        """Return the class index of each label; ``k`` for a label outside the vocabulary.

        Integer vocabularies accept integer, bool and float labels (``2.0`` is class ``2``,
        ``NaN`` and ``2.5`` are unknown, ``inf`` is refused); text vocabularies accept strings
        (``None`` is unknown). Text for an integer vocabulary, or numbers for a text one, is
        refused with :class:`DetectorInputError` naming ``column``.
        """
        k = len(self.classes)
        text = isinstance(self.classes[0], str)
        values, missing = _labels(labels, text=text, column=column)
        if text:  # exact string equality, through the distinct labels only
            index = {label: j for j, label in enumerate(self.classes)}
            distinct, inverse = np.unique(values, return_inverse=True)
            codes = np.fromiter(
                (index.get(label, k) for label in distinct.tolist()),
                dtype=np.intp,
                count=distinct.shape[0],
            )
            return np.where(missing, k, codes[inverse.reshape(-1)])
        vocab = np.asarray(self.classes)
        order = np.argsort(vocab, kind="stable")
        ordered = vocab[order]
        position = np.minimum(np.searchsorted(ordered, values), k - 1)
        found = (ordered[position] == values) & ~missing
        return np.where(found, order[position], k)

    def update(self, y_true: Any, y_pred: Any) -> ConfusionCounts:
        """Return these counts plus the pairs ``(y_true[i], y_pred[i])``.

        Both inputs are 1-D, non-empty and of the same length; they are not modified.
        """
        true_codes = self.encode(y_true, column="y_true")
        pred_codes = self.encode(y_pred, column="y_pred")
        if true_codes.shape != pred_codes.shape:
            raise DetectorInputError(
                f"{pred_codes.shape[0]} predictions for {true_codes.shape[0]} true labels",
                column="y_pred",
            )
        size = len(self.classes) + 1
        pairs = np.bincount(true_codes * size + pred_codes, minlength=size * size)
        return ConfusionCounts(self.classes, self.matrix + pairs.reshape(size, size))

    def merge(self, other: ConfusionCounts) -> ConfusionCounts:
        """Return the sum of two counts over the same vocabulary (same classes, same order)."""
        if other.classes != self.classes:
            raise DetectorInputError(
                f"cannot merge counts over {list(other.classes)} into {list(self.classes)}"
            )
        return ConfusionCounts(self.classes, self.matrix + other.matrix)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``{"classes": [...], "matrix": [[...], ...]}``."""
        return {"classes": list(self.classes), "matrix": self.matrix.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfusionCounts:
        """Rebuild counts from :meth:`to_dict` output; malformed data raises DetectorInputError."""
        try:
            classes, matrix = data["classes"], data["matrix"]
        except (KeyError, TypeError) as exc:
            raise DetectorInputError(f"not serialised confusion counts: {exc!r}") from None
        array = np.asarray(matrix)
        if array.dtype.kind not in "iu":
            raise DetectorInputError("matrix must hold integer counts")
        return cls(tuple(classes), array)


@dataclass(frozen=True, eq=False)
class ClassificationMetrics:
    """Accuracy and per-class / macro precision, recall and F1 (all fractions in [0, 1]).

    With ``TP_j = matrix[j, j]``, ``P_j`` = rows predicted as class ``j`` (whatever their true
    label, unknown included) and ``T_j`` = rows whose true label is class ``j`` (whatever the
    prediction, unknown included):

    * ``accuracy = sum_j TP_j / n`` over all ``n`` pairs; a pair with a label outside the
      vocabulary is never correct (two unknown labels cannot be told apart);
    * ``precision[j] = TP_j / P_j``, ``recall[j] = TP_j / T_j``,
      ``f1[j] = 2 TP_j / (P_j + T_j)`` (the harmonic mean of the two), each ``0.0`` when its
      denominator is zero (scikit-learn's ``zero_division=0``);
    * ``support[j] = T_j``;
    * ``macro_*`` is the unweighted mean over the ``k`` vocabulary classes, classes never seen
      included (scikit-learn's ``average="macro"`` with ``labels=classes``).

    These equal scikit-learn's ``accuracy_score`` and
    ``precision_recall_fscore_support(labels=classes, zero_division=0)``.
    When ``n == 0``, ``insufficient`` is set and every metric is ``NaN``.
    """

    classes: tuple[Label, ...]
    n: int
    accuracy: float
    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    f1: NDArray[np.float64]
    support: NDArray[np.int64]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    unknown_true: int
    unknown_pred: int
    insufficient: bool

    def __post_init__(self) -> None:
        for value in (self.precision, self.recall, self.f1, self.support):
            readonly(value)


def _ratio(numerator: NDArray[np.int64], denominator: NDArray[np.int64]) -> NDArray[np.float64]:
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def classification_metrics(counts: ConfusionCounts) -> ClassificationMetrics:
    """Compute :class:`ClassificationMetrics` from confusion counts."""
    matrix = counts.matrix
    k = len(counts.classes)
    n = counts.n
    tp = np.diagonal(matrix)[:k].astype(np.int64)
    predicted = matrix[:, :k].sum(axis=0)
    support = matrix[:k, :].sum(axis=1)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, predicted + support)
    if n == 0:
        precision[:] = recall[:] = f1[:] = np.nan
    return ClassificationMetrics(
        classes=counts.classes,
        n=n,
        accuracy=float(tp.sum() / n) if n else float("nan"),
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        macro_precision=float(precision.mean()),
        macro_recall=float(recall.mean()),
        macro_f1=float(f1.mean()),
        unknown_true=counts.unknown_true,
        unknown_pred=counts.unknown_pred,
        insufficient=n == 0,
    )
