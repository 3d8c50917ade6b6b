"""``--source coingecko`` against a local fake CoinGecko and a real broker: reference prices on their
own topic, 429 + Retry-After waited out, partial answers dead-lettered with their reason and
counted, unchanged (cached) answers not republished, the API key sent as a header; and the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

from infrastructure.services import free_port
from ingestion.dead_letters import read_dead_letter_headers
from ingestion.runner import RunOptions
from tests.fixtures.coingecko import KEY_HEADER, FakeCoinGecko
from tests.fixtures.ingest import IngestThread, read_topic
from tests.fixtures.services import Broker, child_environment, settings_for

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
PRODUCTS = "bitcoin:usd=BTC-USD,bitcoin:eur=BTC-EUR,ethereum:usd=ETH-USD,ethereum:eur=ETH-EUR"


def coingecko_settings(broker: Broker, fake: FakeCoinGecko, **coingecko: object):
    tag = uuid.uuid4().hex[:8]
    return settings_for(
        broker,
        kafka={"trades_topic": f"trades-{tag}", "dlq_topic": f"dlq-{tag}", "reference_topic": f"ref-{tag}"},
        coingecko={
            "base_url": fake.base_url,
            "ids": "bitcoin,ethereum",
            "vs_currencies": "usd,eur",
            "products": PRODUCTS,
            "poll_interval_s": 0.2,
            "rate_limit_per_minute": 6000.0,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.2,
            **coingecko,
        },
        metrics={"coingecko_producer_port": free_port()},
    )


def run(settings, polls: int):
    options = RunOptions(source="coingecko", max_messages=polls, serve_metrics=False)
    ingest = IngestThread(settings, options).start()
    return ingest, ingest.join(60)


def test_reference_prices_land_on_their_own_topic_exactly(
    broker: Broker, fake_coingecko: FakeCoinGecko
) -> None:
    settings = coingecko_settings(broker, fake_coingecko)
    ingest, summary = run(settings, 3)
    # three polls of an unchanged (cached) answer: each pair published once
    assert summary.reference is not None
    assert (summary.reference.polls, summary.reference.prices, summary.reference.unchanged) == (3, 4, 8)
    assert summary.acked == 4 and summary.unsent == 0 and summary.failed == 0
    messages = read_topic(broker.bootstrap, settings.kafka.reference_topic)
    events = {(m.key(), orjson.loads(m.value())["price"]) for m in messages}
    assert events == {
        (b"coingecko:BTC-USD", "67187.3358398074"), (b"coingecko:BTC-EUR", "62110.51"),
        (b"coingecko:ETH-USD", "3321.8249731929"), (b"coingecko:ETH-EUR", "3070.94"),
    }  # fmt: skip
    request = fake_coingecko.requests[0]
    assert request == {
        "ids": "bitcoin,ethereum", "vs_currencies": "usd,eur",
        "include_last_updated_at": "true", "precision": "full",
    }  # fmt: skip
    assert KEY_HEADER not in fake_coingecko.headers[0]  # keyless unless configured
    assert ingest.counter("lakehouse_reference_prices_total", product="BTC-USD") == 1
    assert not read_topic(broker.bootstrap, settings.kafka.trades_topic, timeout_s=5)  # trades untouched

    fake_coingecko.set_price("bitcoin", "usd", "67190.01", updated=1711356360)  # the cache moved
    _, summary = run(settings, 1)
    assert summary.reference is not None and summary.reference.prices == 4  # a new process remembers nothing
    assert len(read_topic(broker.bootstrap, settings.kafka.reference_topic)) == 8


def test_rate_limits_wait_their_retry_after(broker: Broker, fake_coingecko: FakeCoinGecko) -> None:
    settings = coingecko_settings(broker, fake_coingecko)
    fake_coingecko.rate_limit(2, retry_after="1")
    started = time.monotonic()
    ingest, summary = run(settings, 1)
    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 waits, not the 0.05 s backoff
    assert summary.reference is not None and summary.reference.prices == 4
    assert len(fake_coingecko.requests) == 3
    assert ingest.counter("lakehouse_reference_rate_limited_total") == 2
    assert ingest.counter("lakehouse_reference_polls_total", outcome="ok") == 1


def test_a_retry_after_beyond_the_bound_fails_that_poll_only(
    broker: Broker, fake_coingecko: FakeCoinGecko
) -> None:
    settings = coingecko_settings(broker, fake_coingecko, max_wait_s=5.0)
    fake_coingecko.rate_limit(1, retry_after="3600")
    ingest, summary = run(settings, 2)
    assert summary.reference is not None
    assert (summary.reference.failed_polls, summary.reference.prices) == (1, 4)
    assert ingest.counter("lakehouse_reference_polls_total", outcome="failed") == 1


def test_partial_answers_are_dead_lettered_with_their_reason(
    broker: Broker, fake_coingecko: FakeCoinGecko
) -> None:
    settings = coingecko_settings(
        broker,
        fake_coingecko,
        ids="bitcoin,ethereum,solana",
        products=PRODUCTS + ",solana:usd=SOL-USD,solana:eur=SOL-EUR",
    )
    fake_coingecko.set_price("ethereum", "usd", None)
    fake_coingecko.forget_currency("bitcoin", "eur")
    ingest, summary = run(settings, 1)
    assert summary.reference is not None
    assert (summary.reference.prices, summary.reference.refused) == (2, 4)
    assert summary.dead_lettered == 4
    dead = read_topic(broker.bootstrap, settings.kafka.dlq_topic)
    reasons = sorted(read_dead_letter_headers(m.headers())["dlq.reason"] for m in dead)
    assert reasons == [
        "bitcoin: vs currency 'eur' missing",
        "coin id 'solana' missing from the answer",
        "coin id 'solana' missing from the answer",
        "ethereum/usd: price is null",
    ]
    assert {m.key() for m in dead} == {
        b"coingecko:BTC-EUR",
        b"coingecko:SOL-USD",
        b"coingecko:SOL-EUR",
        b"coingecko:ETH-USD",
    }
    assert all(m.value() == dead[0].value() for m in dead)  # the answer itself, untouched
    assert ingest.counter("lakehouse_reference_refused_total", kind="missing_id") == 2
    assert ingest.counter("lakehouse_reference_refused_total", kind="null_price") == 1
    assert ingest.counter("lakehouse_reference_refused_total", kind="missing_currency") == 1


def test_the_cli_sends_the_api_key_as_a_header(broker: Broker, tmp_path: Path) -> None:
    fake = FakeCoinGecko(require_key="demo-secret")
    fake.start()
    try:
        settings = coingecko_settings(broker, fake, api_key="demo-secret")
        done = subprocess.run(
            [LAKEHOUSE, "ingest", "--source", "coingecko", "--max-messages", "1", "--no-metrics"],
            env=child_environment(settings), cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "source=coingecko polls=1 failed_polls=0 prices=4" in done.stdout
        assert fake.headers[0][KEY_HEADER] == "demo-secret"

        wrong = coingecko_settings(broker, fake, api_key="wrong")
        done = subprocess.run(
            [LAKEHOUSE, "ingest", "--source", "coingecko", "--max-messages", "1", "--no-metrics"],
            env=child_environment(wrong), cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert "failed_polls=1" in done.stdout
        assert "HTTP 401: API Key Missing (code 10002)" in done.stderr
        assert "wrong" not in done.stderr  # the key is never logged
    finally:
        fake.stop()


def test_synthetic_reference_prices_are_their_own_source(broker: Broker, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    settings = settings_for(broker, kafka={"reference_topic": f"ref-{tag}", "dlq_topic": f"dlq-{tag}"})
    done = subprocess.run(
        [LAKEHOUSE, "ingest", "--source", "synthetic", "--venue", "coingecko", "--speed", "0",
         "--max-messages", "5", "--no-metrics"],
        env=child_environment(settings), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "polls=5" in done.stdout and "prices=20" in done.stdout
    events = [orjson.loads(m.value()) for m in read_topic(broker.bootstrap, settings.kafka.reference_topic)]
    assert len(events) == 20 and {e["source"] for e in events} == {"synthetic-coingecko"}
    assert {e["product_id"] for e in events} == set(settings.products)


def test_auto_falls_back_to_synthetic_reference_prices(broker: Broker, fake_coingecko: FakeCoinGecko) -> None:
    settings = coingecko_settings(broker, fake_coingecko, base_url=f"http://127.0.0.1:{free_port()}/api/v3")
    options = RunOptions(source="auto", venue="coingecko", speed=0, max_messages=2, serve_metrics=False)
    ingest = IngestThread(settings, options).start()
    summary = ingest.join(60)
    assert summary.source == "synthetic" and summary.reference is not None
    assert (summary.reference.polls, summary.reference.failed_polls, summary.reference.prices) == (2, 0, 8)
    assert any(m.startswith("live CoinGecko API unreachable") for m in ingest.messages)
    events = [orjson.loads(m.value()) for m in read_topic(broker.bootstrap, settings.kafka.reference_topic)]
    assert {e["source"] for e in events} == {"synthetic-coingecko"}
    assert {e["product_id"] for e in events} == {"BTC-USD", "BTC-EUR", "ETH-USD", "ETH-EUR"}


def test_a_stop_ends_a_poll_stuck_in_its_retries(broker: Broker, fake_coingecko: FakeCoinGecko) -> None:
    # an unreachable API and a first retry wait of 500 s or more: only a stop that cancels the
    # request ends the run within the join's bound
    settings = coingecko_settings(
        broker, fake_coingecko, base_url=f"http://127.0.0.1:{free_port()}/api/v3", backoff_initial_s=1000.0,
        backoff_max_s=1000.0,
    )  # fmt: skip
    ingest = IngestThread(settings, RunOptions(source="coingecko", serve_metrics=False)).start()
    time.sleep(2.0)  # inside the first retry's wait
    summary = ingest.stop(60)
    assert summary.reference is not None and summary.reference.prices == 0 and summary.unsent == 0
