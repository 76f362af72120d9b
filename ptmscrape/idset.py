"""A set of record ids in about 9 bytes each, for the sets that grow with the hub.

A Python ``set`` of ints costs ~60 bytes per id (the int object plus its slot): 60 MB for a
million-model crawl, once in the dedupe stage and again in every merge of ``<hub>.jsonl``. Here ids
live in a sorted ``array('q')`` (8 bytes each) plus a small set of recent additions that is merged
into the array whenever it reaches an eighth of it.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from typing import TypeGuard

_MIN_RECENT = 65_536


class IdSet:
    """Exact set membership (``in``, ``add``, ``len``); compact for 64-bit ints, which ids are."""

    def __init__(self, ids: Iterable[int] = ()):
        self._sorted = array("q")
        self._recent: set[int] = set()
        self._other: set[object] = set()  # anything else (bad input), kept as a plain set would
        for i in ids:
            self.add(i)

    def __contains__(self, rid: object) -> bool:
        rid = _as_int(rid)
        if rid in self._recent:
            return True
        if not _fits(rid):
            return rid in self._other
        ids = self._sorted
        at = bisect_left(ids, rid)
        return at < len(ids) and ids[at] == rid

    def add(self, rid: object) -> None:
        rid = _as_int(rid)
        if rid in self:
            return
        if not _fits(rid):
            self._other.add(rid)
            return
        self._recent.add(rid)
        if len(self._recent) >= max(_MIN_RECENT, len(self._sorted) // 8):
            self._sorted = array("q", heapq.merge(self._sorted, sorted(self._recent)))
            self._recent.clear()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent) + len(self._other)


def _as_int(rid: object) -> object:
    # 1.0 == 1 in a Python set; JSON readers may give either.
    return int(rid) if isinstance(rid, float) and rid.is_integer() else rid


def _fits(rid: object) -> TypeGuard[int]:
    return isinstance(rid, int) and -2**63 <= rid < 2**63
