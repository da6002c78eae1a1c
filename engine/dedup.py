"""The event ids a deployment accepted lately: exact duplicate checks, cheap per batch.

An event whose ``event_id`` was accepted before, within the dedup horizon, is a duplicate
and dropped (the first one wins, inside a batch too). The ids are kept in one ``set``, so a
batch is checked with C-level set operations; their event times are kept beside it, as the
arrays of the batches that brought them, and read only when pruning. Together they hold
exactly what a mapping ``id -> event time of its first accepted event`` would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray


def _all_new(ids: list[Any], seen: set[str]) -> set[str] | None:
    """The batch's ids as a set if every id is text, none repeats and none is in ``seen``.

    The common case, answered in a few C-level passes (a set compares ids exactly, NULs
    included); otherwise (``None``) the ids are looked at one by one.
    """
    try:
        "".join(ids)
    except TypeError:  # an id that is not text (replayed files may hold nulls)
        return None
    new = set(ids)
    return new if len(new) == len(ids) and seen.isdisjoint(new) else None


@dataclass
class SeenIds:
    """Ids accepted lately and their event times (module docstring)."""

    ids: set[str] = field(default_factory=set)
    batches: list[tuple[NDArray[np.object_], NDArray[np.int64]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def fresh(self, event_id: NDArray[np.object_], ts_ms: NDArray[np.int64]) -> NDArray[np.intp]:
        """Rows whose id is new (not seen, and first in the batch); they are remembered."""
        ids = event_id.tolist()
        new = _all_new(ids, self.ids)
        if new is not None:
            self.ids |= new
            # a copy: the times may be a view of an Arrow payload, not to be kept alive
            self.batches.append((event_id, ts_ms.copy()))
            return np.arange(len(ids), dtype=np.intp)
        unseen = np.fromiter((i not in self.ids for i in ids), dtype=bool, count=len(ids))
        # on the object array: numpy text ("U") would drop trailing NULs and merge ids
        _, first = np.unique(event_id, return_index=True)
        keep = np.zeros(len(ids), dtype=bool)
        keep[first] = True  # the first of repeats inside the batch
        keep &= unseen
        fresh = np.flatnonzero(keep)
        self.ids.update(event_id[fresh].tolist())
        self.batches.append((event_id[fresh], ts_ms[fresh]))
        return fresh

    def prune(self, horizon_ms: int) -> None:
        """Forget ids whose event time is over ``horizon_ms`` before the newest one kept."""
        newest = max((int(ts.max()) for _, ts in self.batches if ts.size), default=None)
        if newest is None:
            return
        kept = []
        for ids, ts in self.batches:
            old = ts < newest - horizon_ms
            if old.any():
                self.ids.difference_update(ids[old].tolist())
                ids, ts = ids[~old], ts[~old]
            if ts.size:
                kept.append((ids, ts))
        self.batches = kept
