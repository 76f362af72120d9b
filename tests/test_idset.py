"""IdSet answers exactly like a Python set (it replaces one where sets grow with the hub)."""

from __future__ import annotations

import random

from ptmscrape import idset
from ptmscrape.idset import IdSet


def test_idset_matches_a_python_set_across_merges(monkeypatch):
    monkeypatch.setattr(idset, "_MIN_RECENT", 16)  # merge into the sorted array often
    rng = random.Random(7)
    ours, reference = IdSet(), set()
    for _ in range(5000):
        rid = rng.choice([rng.randrange(1, 2**53), rng.randrange(-50, 50), rng.randrange(1, 500)])
        assert (rid in ours) == (rid in reference)
        ours.add(rid)
        reference.add(rid)
    assert len(ours) == len(reference) and len(ours._sorted) > 1000
    for probe in [*reference, *(rng.randrange(-2**62, 2**62) for _ in range(2000))]:
        assert (probe in ours) == (probe in reference)
    for odd in ["1", None, 2**70, True, 1.0, -(2**63)]:
        assert (odd in ours) == (odd in reference)


def test_idset_keeps_anything_else_like_a_plain_set():
    ours = IdSet([2**64, "x", None, 5])
    assert 2**64 in ours and "x" in ours and None in ours and 5 in ours and 6 not in ours
    assert len(ours) == 4
