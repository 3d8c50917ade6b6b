"""A Kafka log that went backwards under bronze: how it is found, recorded and counted.

A broker that crashes can come back with less than it acknowledged (noida-db, or Kafka with unsafe
flush settings), and a topic can be deleted and created again. Either way offsets bronze already
holds now name other messages (or none), so the rule "skip what the table covers" would silently
drop new trades. The writer therefore checks, after any broker disconnect or out-of-range fetch,
that the message at each partition's last recorded offset is still the one bronze holds; if not,
it finds the first offset where the new log differs (``first_divergent``: the old log is a prefix
of the new one up to there), reads on from that offset and records a ``Reset`` in the snapshot
summary of its next append (``RESETS_PROPERTY``, carried forward like the offsets, the newest
``MAX_RESETS`` kept). Rows bronze wrote before the reset keep their old offsets; rows of the new log
at the same offsets have a later ``ingest_time`` (after ``Reset.time``).

What a reset cost: ``Reset.lost`` is what the broker acknowledged beyond what bronze held and then
lost (known when the writer saw the old end before the crash; None otherwise). Those trades are gone
from Kafka; the completeness check by exchange trade id finds them and the backfill refills them.
``Reset.rescued`` is what bronze held that the new log no longer has (nothing lost there).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass

from pyiceberg.table import Table

RESETS_PROPERTY = "lakehouse.kafka.resets"
MAX_RESETS = 20  # carried in every append's summary: bounded


@dataclass(frozen=True)
class Reset:
    topic: str
    partition: int
    old_next: int  # the next offset bronze had recorded
    new_start: int  # the first offset of the new log bronze had not seen (it reads on from here)
    end: int  # the partition's end offset when the reset was found
    seen_end: int | None  # the end offset the writer last saw before it (None: not known)
    time: str  # ISO 8601 UTC, when the writer found it

    @property
    def rescued(self) -> int:
        """Messages bronze holds that the new log lost."""
        return self.old_next - self.new_start

    @property
    def lost(self) -> int | None:
        """Acknowledged messages the broker lost before bronze read them, as far as the writer saw the
        old log's end (None: it never saw it). A lower bound: the broker may have acknowledged more
        after the writer last looked, and new messages may already stand where lost ones were."""
        if self.seen_end is None:
            return None
        return max(0, self.seen_end - max(self.old_next, self.end))


def first_divergent(lo: int, hi: int, same: Callable[[int], bool]) -> int:
    """The smallest offset in ``[lo, hi)`` where the logs differ (``hi`` if none), given that they
    agree on every offset before it and differ on every one from it (a binary search)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if same(mid):
            lo = mid + 1
        else:
            hi = mid
    return lo


def encode_resets(resets: Iterable[Reset]) -> str:
    return json.dumps([asdict(r) for r in list(resets)[-MAX_RESETS:]], separators=(",", ":"))


def decode_resets(text: str) -> list[Reset]:
    return [Reset(**item) for item in json.loads(text)]


def recorded_resets(summaries_newest_first: Iterable[Mapping[str, str]]) -> list[Reset]:
    """The resets recorded in the table: from the newest snapshot summary that carries them."""
    for summary in summaries_newest_first:
        text = summary.get(RESETS_PROPERTY)
        if text:
            return decode_resets(text)
    return []


def snapshot_summaries(table: Table) -> Iterator[Mapping[str, str]]:
    """The snapshot summaries of ``table``'s current branch, newest first."""
    snapshot = table.current_snapshot()
    while snapshot is not None:
        yield snapshot.summary.additional_properties if snapshot.summary else {}
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None


def table_resets(table: Table, topic: str | None = None) -> list[Reset]:
    """Every reset recorded in ``table`` (oldest first), optionally of one topic: what the
    reconciliation counts (``sum(r.lost for r in ...)``: trades lost between Kafka and bronze)."""
    return [r for r in recorded_resets(snapshot_summaries(table)) if topic is None or r.topic == topic]
