"""Reference-fitted bins and vectorised bin counting.

Bins are fitted once on the reference and then held fixed: a current window is counted
over the reference's bins, never over bins recomputed from reference and current together
(which would make the bins move with every window).

Two kinds of bins, chosen per feature:

* **interval bins** from ``E`` sorted, distinct edges ``e_1 < ... < e_E``: ``E + 1`` bins
  ``(-inf, e_1), [e_1, e_2), ..., [e_E, +inf)``; a value ``x`` goes to bin
  ``#{i : e_i <= x}`` (left-closed, like ``numpy.histogram``'s inner bins);
* **value bins** for a feature with few distinct reference values ``v_1 < ... < v_V``:
  one bin per distinct value plus an overflow bin for every other value (values never
  seen in the reference), ``V + 1`` bins in all.

Either way a feature has ``len(edges) + 1`` bins. Missing values (``NaN``) are not binned:
they are counted apart, per feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors._columns import FloatMatrix, readonly

IntMatrix = NDArray[np.int64]


@dataclass(frozen=True)
class Binning:
    """Per-feature bins fitted on a reference (see the module docstring for the rules).

    Attributes:
        edges: per feature, the sorted interval edges, or the distinct values for value bins.
        by_value: per feature, ``True`` for value bins, ``False`` for interval bins.

    """

    edges: tuple[NDArray[np.float64], ...]
    by_value: NDArray[np.bool_]

    def __post_init__(self) -> None:
        for e in self.edges:
            readonly(e)
        readonly(self.by_value)

    @cached_property
    def _lookups(self) -> tuple[_Lookup | None, ...]:
        return tuple(
            None if by_value else _Lookup.fit(edges)
            for edges, by_value in zip(self.edges, self.by_value, strict=True)
        )

    @cached_property
    def _grid(self) -> _Grid | None:
        return _Grid.fit(self._lookups)

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.edges)

    @property
    def n_bins(self) -> NDArray[np.int64]:
        """Bins per feature: ``len(edges) + 1`` (the last one is the overflow for value bins)."""
        return np.array([len(e) + 1 for e in self.edges], dtype=np.int64)

    @property
    def width(self) -> int:
        """Largest number of bins of any feature: the padded width of count matrices."""
        return int(self.n_bins.max(initial=1))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"edges": [e.tolist() for e in self.edges], "by_value": self.by_value.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Binning:
        """Inverse of :meth:`to_dict`."""
        return cls(
            edges=tuple(np.asarray(e, dtype=np.float64) for e in data["edges"]),
            by_value=np.asarray(data["by_value"], dtype=bool),
        )


def quantile_binning(
    reference: FloatMatrix, bins: int, *, by_value_up_to: int | None = None
) -> Binning:
    """Fit bins on ``reference`` (rows x features, NaN allowed and ignored).

    Interval edges are the reference quantiles at ``i / bins`` for ``i = 1 .. bins - 1``
    (numpy's default ``"linear"`` quantile method) with duplicates removed. A feature with
    at most ``by_value_up_to`` distinct reference values gets value bins instead (one bin
    per distinct value plus an overflow bin); ``None`` disables value bins.

    A feature whose reference is all NaN gets no edges (a single bin).
    """
    return fit_binnings(reference, ((bins, by_value_up_to),))[0][0][0]


def fit_binnings(
    reference: FloatMatrix, specs: tuple[tuple[int, int | None], ...]
) -> tuple[list[tuple[Binning, IntMatrix]], NDArray[np.int64]]:
    """Fit several binnings (``(bins, by_value_up_to)`` each) and count the reference over them.

    Each column is sorted once: the distinct values, the quantiles (cheap on sorted data)
    and the reference counts (a binary search of the edges into the sorted column) all come
    from that one sort. Returns ``[(binning, reference_counts), ...]`` in ``specs`` order and
    the missing values per feature.
    """
    for bins, _ in specs:
        if bins < 1:
            raise ValueError(f"bins must be >= 1, got {bins}")
    columns = np.sort(np.ascontiguousarray(reference.T), axis=1)  # NaN sort last
    nulls = np.isnan(columns).sum(axis=1).astype(np.int64)
    fitted: list[tuple[list[NDArray[np.float64]], list[bool], list[NDArray[np.int64]]]] = [
        ([], [], []) for _ in specs
    ]
    for j in range(columns.shape[0]):
        values = columns[j, : columns.shape[1] - nulls[j]]
        starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
        for (bins, by_value_up_to), (edges, by_value, counts) in zip(specs, fitted, strict=True):
            if by_value_up_to is not None and starts.size <= by_value_up_to:
                distinct = values[starts]
                runs = np.diff(np.append(starts, values.size))
                edges.append(distinct)
                by_value.append(True)
                counts.append(np.append(runs, 0).astype(np.int64))
                continue
            if values.size == 0 or bins == 1:
                cut = np.empty(0)
            else:
                cut = np.unique(np.quantile(values, np.arange(1, bins) / bins))
            edges.append(cut)
            by_value.append(False)
            # bin b holds e_(b-1) <= x < e_b: counts are differences of left-side positions
            bounds = np.concatenate([[0], np.searchsorted(values, cut, side="left"), [values.size]])
            counts.append(np.diff(bounds).astype(np.int64))
    out = []
    for edges, by_value, counts in fitted:
        binning = Binning(edges=tuple(edges), by_value=np.array(by_value, dtype=bool))
        matrix = np.zeros((len(edges), binning.width), dtype=np.int64)
        for j, row in enumerate(counts):
            matrix[j, : row.size] = row
        out.append((binning, matrix))
    return out, nulls


def bin_index(matrix: FloatMatrix, binning: Binning) -> IntMatrix:
    """Bin of every value (rows x features); ``-1`` marks a missing value."""
    return feature_bin_index(np.ascontiguousarray(matrix.T), binning).T


def feature_bin_index(columns: FloatMatrix, binning: Binning) -> IntMatrix:
    """Like :func:`bin_index` for feature-major input (features x rows) and output.

    Up to :attr:`_Grid.MAX_ROWS` rows, features with a lookup grid are searched together, a
    few numpy calls for all of them (per feature, the dozen calls of a search cost more than
    the search itself on batches of ~1,000 rows).
    """
    index = np.empty(columns.shape, dtype=np.int64)
    grid = binning._grid
    if grid is not None and not 0 < columns.shape[1] <= grid.MAX_ROWS:
        grid = None
    if grid is not None:
        index[grid.features] = grid.search(columns[grid.features])
    for j, edges in enumerate(binning.edges):
        column = columns[j]
        lookup = binning._lookups[j]
        if grid is not None and lookup is not None:
            continue  # searched with the grid above
        if binning.by_value[j]:
            position = np.searchsorted(edges, column, side="left")
            clipped = np.minimum(position, max(edges.size - 1, 0))
            hit = (position < edges.size) & (edges[clipped] == column) if edges.size else False
            index[j] = np.where(hit, position, edges.size)
        elif lookup is not None:
            index[j] = lookup.search(column)
        else:
            index[j] = np.searchsorted(edges, column, side="right")
    index[np.isnan(columns)] = -1
    return index


@dataclass(frozen=True)
class _Lookup:
    """Exact ``searchsorted(edges, x, side="right")`` through a uniform grid over the edges.

    Cell ``g(v) = floor((v - lo) * scale)``, clipped to the grid, is monotone in ``v`` even
    in floating point, so ``table[g(x)] = #{edges e : g(e) < g(x)}`` counts only edges below
    ``x``; the at most ``steps`` edges sharing ``x``'s cell are then checked one
    vectorised step at a time. Worth it for many edges, where a branchy binary search costs
    ~60 ns a value; built only when every cell holds at most ``MAX_STEPS`` edges.
    """

    lo: float
    scale: float
    cells: int
    table: NDArray[np.int64]
    padded: NDArray[np.float64]
    steps: int

    MIN_EDGES = 32
    MAX_STEPS = 4
    MAX_CELLS_PER_EDGE = 64
    ONE_STEP_CELLS_PER_EDGE = 16

    @classmethod
    def fit(cls, edges: NDArray[np.float64]) -> _Lookup | None:
        if edges.size < cls.MIN_EDGES or not edges[-1] > edges[0]:
            return None
        lo, span = float(edges[0]), float(edges[-1] - edges[0])
        # the first grid whose cells hold at most MAX_STEPS edges; then finer ones, up to
        # ONE_STEP_CELLS_PER_EDGE cells per edge, while they save a step (each step is three
        # passes over the values; a one-step table of 1,000 edges is 64 KB)
        best: tuple[float, int, NDArray[np.int64], int] | None = None
        cells = 2 * edges.size
        while cells <= cls.MAX_CELLS_PER_EDGE * edges.size:
            scale = cells / span
            if np.isfinite(scale):
                per_cell = np.bincount(cls._cell(edges, lo, scale, cells), minlength=cells)
                steps = int(per_cell.max())
                if steps <= cls.MAX_STEPS and (best is None or steps < best[3]):
                    best = (scale, cells, per_cell, steps)
            if best is not None and (
                best[3] == 1 or cells >= cls.ONE_STEP_CELLS_PER_EDGE * edges.size
            ):
                break
            cells *= 2
        if best is None:
            return None
        scale, cells, per_cell, steps = best
        table = np.concatenate([[0], np.cumsum(per_cell)[:-1]]).astype(np.int64)
        padded = np.concatenate([edges, np.full(steps, np.inf)])
        return cls(lo, scale, cells, table, padded, steps)

    @staticmethod
    def _cell(values: NDArray[np.float64], lo: float, scale: float, cells: int) -> NDArray[np.intp]:
        with np.errstate(over="ignore", invalid="ignore"):  # +-inf: clipped below
            position = (values - lo) * scale
        np.fmax(position, 0.0, out=position)  # fmax/fmin: the clip, with NaN sent to cell 0
        np.fmin(position, cells - 1, out=position)
        return position.astype(np.intp)

    def search(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        cell = self._cell(values, self.lo, self.scale, self.cells)
        index = self.table[cell]
        for _ in range(self.steps):
            index += self.padded[index] <= values
        return index


@dataclass(frozen=True)
class _Grid:
    """Every feature's :class:`_Lookup` stacked, to search all those features at once.

    Each feature keeps its own ``lo``, ``scale`` and cell count (one value per row of the
    feature-major input); tables and padded edges are concatenated with per-feature offsets,
    and every feature's edges are padded with ``steps`` (the largest of any feature)
    infinities, so extra steps beyond a feature's own never move its index. The arithmetic
    per value is :meth:`_Lookup.search`'s, so the bins are the same.
    """

    features: NDArray[np.intp]
    lo: NDArray[np.float64]
    scale: NDArray[np.float64]
    top: NDArray[np.float64]
    table: NDArray[np.int64]
    table_at: NDArray[np.int64]
    padded: NDArray[np.float64]
    padded_at: NDArray[np.int64]
    steps: int

    MAX_ROWS = 2048
    """Longer columns are searched feature by feature: the stacked temporaries leave the
    CPU caches and cost more per value than the per-feature calls save (measured)."""

    @classmethod
    def fit(cls, lookups: tuple[_Lookup | None, ...]) -> _Grid | None:
        chosen = [(j, lookup) for j, lookup in enumerate(lookups) if lookup is not None]
        if not chosen:
            return None
        steps = max(lookup.steps for _, lookup in chosen)
        tables = [lookup.table for _, lookup in chosen]
        padded = [
            np.concatenate(
                [lookup.padded[: lookup.padded.size - lookup.steps], np.full(steps, np.inf)]
            )
            for _, lookup in chosen
        ]
        return cls(
            features=np.array([j for j, _ in chosen], dtype=np.intp),
            lo=np.array([[lookup.lo] for _, lookup in chosen]),
            scale=np.array([[lookup.scale] for _, lookup in chosen]),
            top=np.array([[lookup.cells - 1] for _, lookup in chosen], dtype=np.float64),
            table=np.concatenate(tables),
            table_at=_offsets(tables),
            padded=np.concatenate(padded),
            padded_at=_offsets(padded),
            steps=steps,
        )

    def search(self, columns: FloatMatrix) -> IntMatrix:
        """``searchsorted(edges_j, x, side="right")`` for every value of every grid feature.

        Values are finite or NaN (infinities are refused before binning); bins of missing
        values are meaningless here (the caller marks them ``-1``).
        """
        with np.errstate(over="ignore"):  # a huge value's position is +-inf: clipped below
            position = (columns - self.lo) * self.scale
        np.fmax(position, 0.0, out=position)  # fmax/fmin: the clip, with NaN sent to cell 0
        np.fmin(position, self.top, out=position)
        cell = position.astype(np.intp)
        index: IntMatrix = self.table[cell + self.table_at]
        at = index + self.padded_at
        for _ in range(self.steps):
            step = self.padded[at] <= columns
            index += step
            at += step
        return index


def _offsets(parts: list[NDArray[Any]]) -> NDArray[np.int64]:
    """Start of each part in their concatenation, as a column (one row per part)."""
    sizes = np.array([p.size for p in parts], dtype=np.int64)
    return (np.cumsum(sizes) - sizes)[:, None]


def bin_counts(matrix: FloatMatrix, binning: Binning) -> tuple[IntMatrix, NDArray[np.int64]]:
    """Count values per bin.

    Returns ``(counts, nulls)``: ``counts`` is features x ``binning.width`` (bins past a
    feature's own ``n_bins`` stay zero) and ``nulls`` the missing values per feature.
    """
    index = feature_bin_index(np.ascontiguousarray(matrix.T), binning)
    return counts_from_index(index, binning.width)


def counts_from_index(index: IntMatrix, width: int) -> tuple[IntMatrix, NDArray[np.int64]]:
    """Turn bin indices (features x rows, ``-1`` missing) into per-feature counts in one call.

    ``index`` is consumed: it is overwritten with flat positions to save a copy.
    """
    n_features = index.shape[0]
    missing = index < 0
    index += np.arange(n_features, dtype=np.int64)[:, None] * width
    index[missing] = n_features * width  # one spill slot for every missing value
    counts = np.bincount(index.ravel(), minlength=n_features * width + 1)
    return counts[:-1].reshape(n_features, width), missing.sum(axis=1).astype(np.int64)


def nested_map(coarse: Binning, fine: Binning) -> NDArray[np.int64] | None:
    """Coarse bin of every fine bin, as one flat array over features, when bins nest.

    Entry ``j * fine.width + b`` is the coarse bin (offset by ``j * coarse.width``) that
    holds fine bin ``b`` of feature ``j``, so that
    ``bincount(map, weights=fine_counts.ravel())`` gives every coarse count in one call.
    Fine bins nest in coarse ones when every coarse edge is also a fine edge, which holds
    for quantile edges when ``fine_bins`` is a multiple of ``coarse_bins`` (``i / c`` and
    ``i*r / (c*r)`` are the same double, so the same quantile). Returns ``None`` when any
    feature does not nest (value bins, or edges that do not line up).
    """
    mapping = np.full((fine.n_features, fine.width), -1, dtype=np.int64)
    for j in range(fine.n_features):
        inner, outer = fine.edges[j], coarse.edges[j]
        if coarse.by_value[j] or fine.by_value[j] or not np.isin(outer, inner).all():
            return None
        left_edges = np.concatenate([[-np.inf], inner])
        mapping[j, : left_edges.size] = np.searchsorted(outer, left_edges, side="right")
    offsets = np.arange(fine.n_features, dtype=np.int64)[:, None] * coarse.width
    spill = fine.n_features * coarse.width
    return np.where(mapping >= 0, mapping + offsets, spill).ravel()
