"""Settings: layering, validation messages, and that .env.example documents every variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.settings import MissingSetting, Settings, env_variables, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_four_products_and_loopback() -> None:
    s = Settings(_env_file=None)
    assert s.products == ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD")
    assert s.kafka.bootstrap_servers.startswith("127.0.0.1:")
    assert s.stack.host == "127.0.0.1"


def test_a_relative_data_dir_is_anchored_where_the_settings_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings(_env_file=None).data_dir == tmp_path / ".lakehouse"
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", "lake")
    assert Settings(_env_file=None).data_dir == tmp_path / "lake"


def test_nested_env_and_comma_products(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_PRODUCTS", "btc-usd, eth-eur")
    monkeypatch.setenv("LAKEHOUSE_KAFKA__PARTITIONS", "8")
    s = Settings(_env_file=None)
    assert s.products == ("BTC-USD", "ETH-EUR")
    assert s.kafka.partitions == 8


def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAKEHOUSE_KAFKA__PARTITIONS", "zero")
    with pytest.raises(ValueError, match="LAKEHOUSE_KAFKA__PARTITIONS"):
        load_settings()


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(MissingSetting, match="LAKEHOUSE_S3__ACCESS_KEY"):
        Settings(_env_file=None).s3.credentials()


def test_generated_credentials_are_the_lowest_layer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "credentials.env").write_text(
        "LAKEHOUSE_S3__ACCESS_KEY=generated\nLAKEHOUSE_S3__SECRET_KEY=gsecret\n"
    )
    assert load_settings().s3.credentials() == ("generated", "gsecret")
    (tmp_path / ".env").write_text("LAKEHOUSE_S3__ACCESS_KEY=fromdotenv\n")
    assert load_settings().s3.credentials() == ("fromdotenv", "gsecret")
    monkeypatch.setenv("LAKEHOUSE_S3__ACCESS_KEY", "fromenv")
    assert load_settings().s3.credentials() == ("fromenv", "gsecret")


def test_settings_are_frozen() -> None:
    s = Settings(_env_file=None)
    with pytest.raises(ValueError):
        s.kafka.partitions = 3  # type: ignore[misc]


def test_env_example_documents_every_variable() -> None:
    documented = (ROOT / ".env.example").read_text()
    missing = [name for name, _, _ in env_variables() if f"{name}=" not in documented]
    assert not missing, f".env.example lacks: {missing}"


def test_the_clients_s3_endpoint_wins_over_the_one_the_catalog_hands_out() -> None:
    from infrastructure.catalog import file_io_properties

    client = {
        "s3.endpoint": "http://127.0.0.1:8333",
        "s3.access-key-id": "k",
        "uri": "http://127.0.0.1:19120",
    }
    server = {
        "s3.endpoint": "http://seaweedfs:8333",
        "s3.remote-signing-enabled": "false",
        "s3.access-key-id": "v",
    }
    merged = file_io_properties(client, server)
    assert merged["s3.endpoint"] == "http://127.0.0.1:8333"  # a host client of the compose stack
    assert merged["s3.access-key-id"] == "v" and merged["s3.remote-signing-enabled"] == "false"
    assert file_io_properties({}, server)["s3.endpoint"] == "http://seaweedfs:8333"


def test_list_settings_read_commas_and_json(monkeypatch) -> None:
    from infrastructure.settings import to_environment

    variable = "LAKEHOUSE_COMPLETENESS__BACKFILL_EXCHANGES"
    monkeypatch.setenv(variable, "coinbase, binance")
    settings = Settings(_env_file=None)
    assert settings.completeness.backfill_exchanges == ("coinbase", "binance")
    monkeypatch.setenv(variable, to_environment(settings)[variable])  # JSON, as a child process gets it
    assert Settings(_env_file=None).completeness.backfill_exchanges == ("coinbase", "binance")
