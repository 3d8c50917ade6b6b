"""``lakehouse ingest``, ``lakehouse record`` and ``lakehouse backfill``: the ingestion commands."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from orchestration.cli.params import UTC_TIME, window_option_pair

SOURCES = ("coinbase", "binance", "coingecko", "replay", "synthetic", "auto")
VENUES = ("coinbase", "binance", "coingecko")


def progress_bar(**options):
    """A progress bar on stderr, shown only on a terminal (logs and pipes get the summary line only)."""
    from tqdm import tqdm

    return tqdm(file=sys.stderr, disable=None, dynamic_ncols=True, **options)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.command("ingest")
@click.option(
    "--source",
    type=click.Choice(SOURCES),
    default="coinbase",
    show_default=True,
    help="coinbase / binance: that venue's live feed (one process per venue); coingecko: reference "
    "prices polled from CoinGecko's /simple/price (to their own topic); auto: live Coinbase, "
    "or synthetic if the feed is unreachable; replay: a file from `lakehouse record`; synthetic: a "
    "seeded random walk.",
)
@click.option("--venue", type=click.Choice(VENUES), default="coinbase", show_default=True,
              help="replay/synthetic: whose frame format (synthetic Binance trades are venue synthetic-binance; "
                   "synthetic coingecko: reference prices from source synthetic-coingecko)")  # fmt: skip
@click.option("--file", "replay_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="replay file (zstd NDJSON) for --source replay")  # fmt: skip
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="replay/synthetic pace: 1 original, N times faster, 0 as fast as possible")  # fmt: skip
@click.option("--rate", type=float, default=None, help="synthetic trades per second [settings]")
@click.option("--seed", type=int, default=None, help="synthetic random seed [settings]")
@click.option("--max-messages", type=click.IntRange(min=1), default=None, help="stop after N frames")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="stop after S seconds")  # fmt: skip
@click.option("--metrics/--no-metrics", default=True, show_default=True,
              help="serve Prometheus metrics on settings.metrics.host:producer_port")  # fmt: skip
@click.option("--debug", is_flag=True, help="log full tracebacks of retried errors [settings.debug]")
def ingest(
    source: str,
    venue: str,
    replay_file: Path | None,
    speed: float,
    rate: float | None,
    seed: int | None,
    max_messages: int | None,
    duration: float | None,
    metrics: bool,
    debug: bool,
) -> None:
    """Publish normalized trades to Kafka (dead letters to the DLQ topic) until stopped or bounded."""
    from infrastructure.settings import get_settings
    from ingestion.metrics import IngestMetrics
    from ingestion.runner import Ingestor, RunOptions
    from ingestion.sources import check_recording, count_recording

    _logging()
    if source == "replay" and replay_file is None:
        raise click.UsageError("--source replay needs --file PATH")
    if venue == "coingecko" and source not in ("synthetic", "coingecko", "auto"):
        raise click.UsageError(
            "--venue coingecko goes with --source synthetic or auto (or use --source coingecko)"
        )
    if rate is not None and rate <= 0:
        raise click.BadParameter("must be > 0", param_hint="--rate")
    if replay_file is not None:
        try:
            check_recording(replay_file)
        except ValueError as exc:
            raise click.ClickException(f"{exc}: record one with `lakehouse record --output FILE`") from None
    options = RunOptions(
        source=source,  # type: ignore[arg-type]
        venue=venue,  # type: ignore[arg-type]
        replay_file=replay_file,
        speed=speed,
        rate_per_s=rate,
        seed=seed,
        max_messages=max_messages,
        duration_s=duration,
        serve_metrics=metrics,
    )
    settings = get_settings()
    if debug:
        settings = settings.model_copy(update={"debug": True})
    # a broker that is not up yet is waited for (the runner's capped backoff, one line per attempt)
    metrics = IngestMetrics()
    ingestor = Ingestor(settings, metrics, echo=lambda m: click.echo(m, err=True))
    if replay_file is None:
        summary = asyncio.run(ingestor.run(options))
    else:
        summary = asyncio.run(_with_progress(ingestor, options, metrics, count_recording(replay_file)))
    click.echo(summary.line())
    if summary.unsent or summary.failed:
        sys.exit(1)


async def _with_progress(ingestor, options, metrics, total: int):
    """Run the replay with a bar of frames handled (parsed or dead-lettered) out of the file's."""
    from ingestion.runner import TICK_S

    with progress_bar(total=total, unit="frame", desc="replay") as bar:
        run = asyncio.ensure_future(ingestor.run(options))
        while not run.done():
            await asyncio.wait({run}, timeout=TICK_S)
            dead = metrics.registry.get_sample_value("coinbase_dead_letters_total") or 0
            handled = sum(metrics.received.values()) + int(dead)
            bar.update(min(handled, total) - bar.n)
        return run.result()


@click.command("record")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="replay file to write (zstd-compressed NDJSON)")  # fmt: skip
@click.option("--max-messages", type=click.IntRange(min=1), default=None, help="stop after N frames")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="stop after S seconds")  # fmt: skip
@click.option("--venue", type=click.Choice(VENUES), default="coinbase", show_default=True,
              help="whose live feed (replay a Binance file with --venue binance)")  # fmt: skip
def record(output: Path, max_messages: int | None, duration: float | None, venue: str) -> None:
    """Write raw frames of a venue's live feed, with receive times, to a replay file."""
    from infrastructure.settings import get_settings
    from ingestion.binance_ws import BinanceFeed
    from ingestion.coinbase_ws import CoinbaseFeed
    from ingestion.metrics import IngestMetrics
    from ingestion.sources import RecordingWriter

    _logging()
    settings = get_settings()

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if duration is not None:
            loop.call_later(duration, stop.set)
        writer = RecordingWriter(output)

        def on_frame(raw: bytes, received: datetime) -> None:
            if stop.is_set():
                return
            writer.write(raw, received)
            if max_messages is not None and writer.frames >= max_messages:
                stop.set()

        if venue == "binance":
            feed = BinanceFeed(settings.binance, settings.binance.symbols, on_frame, IngestMetrics(), stop)
        else:
            feed = CoinbaseFeed(settings.coinbase, settings.products, on_frame, IngestMetrics(), stop)
        try:
            await feed.run()
        finally:
            writer.close()
        return writer.frames

    frames = asyncio.run(main())
    click.echo(f"recorded {frames} frames to {output}")


@click.command("backfill")
@click.option("--product", required=True, help="e.g. BTC-USD (must be in settings.products)")
@click.option(
    "--start", type=UTC_TIME, required=True, help="inclusive, e.g. 2024-05-01T12:00:00Z (no zone: UTC)"
)
@click.option("--end", type=UTC_TIME, required=True, help="exclusive")
def backfill(product: str, start: datetime, end: datetime) -> None:
    """Publish a product's trades in [start, end) from the REST API, with source=backfill."""
    from infrastructure.bootstrap import check_broker
    from infrastructure.settings import get_settings
    from ingestion.backfill import backfill_range

    _logging()
    settings = get_settings()
    product = product.upper()
    if product not in settings.products:
        raise click.BadParameter(f"{product} is not in settings.products {settings.products}")
    window_option_pair(start, end)
    check_broker(settings.kafka)
    # REST pages come newest first: progress is the share of the range covered, from its end back
    upto = min(end, datetime.now(UTC))
    span = max((upto - start).total_seconds(), 1e-6)
    with progress_bar(total=round(span), unit="s", desc=f"backfill {product}") as bar:

        def on_trade(trade) -> None:
            bar.update(max(0, round((upto - trade.event_time).total_seconds()) - bar.n))

        result = backfill_range(settings, product, start, end, on_trade)
        bar.update(bar.total - bar.n)
    click.echo(
        f"backfilled {product}: published={result.published} acked={result.acked} unsent={result.unsent}"
    )
    if not result.complete:
        sys.exit(1)
