"""The streams the bronze writer can consume: one writer (``writer.BronzeWriter``), one instance
per stream, each with its topic, table, row format, consumer group and metrics port.

- ``trades``: ``kafka.trades_topic`` -> ``bronze.trades`` (group ``bronze.consumer_group``);
- ``reference_prices``: ``kafka.reference_topic`` -> ``bronze.reference_prices`` (group
  ``bronze.consumer_group`` + ``-reference-prices``, metrics on ``metrics.bronze_reference_port``).

Each instance keeps the same exactly-once contract: the offsets it covers live in its own table's
snapshot summaries, so the two never share bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from infrastructure.settings import KafkaSettings, MetricsSettings
from processing.bronze.reference_rows import REFERENCE_ROWS
from processing.bronze.rows import TRADE_ROWS, RowFormat


@dataclass(frozen=True)
class Stream:
    name: str
    rows: RowFormat
    topic: Callable[[KafkaSettings], str]
    group_suffix: str  # appended to bronze.consumer_group ("" for trades: the group they always had)
    port: Callable[[MetricsSettings], int]

    @property
    def identifier(self) -> str:
        return self.rows.table.identifier


TRADES = Stream("trades", TRADE_ROWS, lambda k: k.trades_topic, "", lambda m: m.bronze_port)
REFERENCE_PRICES = Stream(
    "reference_prices", REFERENCE_ROWS, lambda k: k.reference_topic, "-reference-prices",
    lambda m: m.bronze_reference_port,
)  # fmt: skip
STREAMS: dict[str, Stream] = {s.name: s for s in (TRADES, REFERENCE_PRICES)}
