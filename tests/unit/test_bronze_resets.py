"""The pure parts of finding and recording a Kafka log that went backwards under bronze."""

from __future__ import annotations

import pytest

from processing.bronze.resets import (
    MAX_RESETS,
    RESETS_PROPERTY,
    Reset,
    decode_resets,
    encode_resets,
    first_divergent,
    recorded_resets,
)


@pytest.mark.parametrize(
    ("lo", "hi", "departs"), [(0, 100, 37), (0, 100, 0), (0, 100, 100), (5, 6, 5), (7, 7, 7)]
)
def test_first_divergent_finds_where_the_logs_part(lo: int, hi: int, departs: int) -> None:
    asked: list[int] = []

    def same(offset: int) -> bool:
        asked.append(offset)
        return offset < departs

    assert first_divergent(lo, hi, same) == min(max(departs, lo), hi)
    assert len(asked) <= max(1, (hi - lo).bit_length())  # a binary search, not a scan


def test_resets_round_trip_bounded_and_count_what_was_lost() -> None:
    resets = [Reset("t", i % 2, 1000 + i, 900, 950, 1100 + i, "2026-12-01T00:00:00+00:00") for i in range(30)]
    decoded = decode_resets(encode_resets(resets))
    assert decoded == resets[-MAX_RESETS:]
    assert decoded[0].rescued == 1010 - 900 and decoded[0].lost == 100  # seen 1110, bronze had 1010
    assert Reset("t", 0, 500, 500, 520, 600, "x").lost == 80  # went back, but not below bronze
    assert Reset("t", 0, 10, 5, 5, None, "x").lost is None  # the writer had not seen the old end
    summaries = [{}, {RESETS_PROPERTY: encode_resets(resets[:1])}, {RESETS_PROPERTY: encode_resets(resets)}]
    assert recorded_resets(summaries) == resets[:1]  # the newest summary that carries them
