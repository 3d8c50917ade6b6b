"""Maintenance decisions: which partitions to compact, which snapshots to expire."""

from __future__ import annotations

from collections import Counter

from processing import maintenance


def test_pure_decisions() -> None:
    assert maintenance.partitions_to_compact(Counter({(1,): 12, (2,): 3}), 10) == [(1,)]
    snaps = [(1, 100), (2, 200), (3, 300), (4, 400)]
    assert maintenance.snapshots_to_expire(snaps, current_id=4, older_than_ms=350, retain_last=2) == [2, 1]
    assert maintenance.snapshots_to_expire(snaps, current_id=4, older_than_ms=350, retain_last=5) == []
