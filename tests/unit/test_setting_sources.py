"""``lakehouse settings --sources``: where each value came from, by load_settings' precedence, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.settings import ENV_PREFIX, env_variables, load_settings, setting_sources


def test_each_value_names_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, _, _ in env_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "credentials.env").write_text(
        f"{ENV_PREFIX}S3__ACCESS_KEY=stored\n{ENV_PREFIX}S3__SECRET_KEY=hidden\n"
    )
    (tmp_path / ".env").write_text(f"{ENV_PREFIX}KAFKA__PARTITIONS=3\n{ENV_PREFIX}S3__SECRET_KEY=dotenv\n")
    monkeypatch.setenv(f"{ENV_PREFIX}DATA_DIR", str(data))
    monkeypatch.setenv(f"{ENV_PREFIX}KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    rows = {name: (value, source) for name, value, source in setting_sources(load_settings())}
    assert rows[f"{ENV_PREFIX}KAFKA__BOOTSTRAP_SERVERS"] == ("127.0.0.1:1", "environment")
    assert rows[f"{ENV_PREFIX}KAFKA__PARTITIONS"] == ("3", ".env")
    assert rows[f"{ENV_PREFIX}S3__ACCESS_KEY"] == ("**********", str(data / "credentials.env"))
    assert rows[f"{ENV_PREFIX}S3__SECRET_KEY"] == ("**********", ".env")  # .env beats the file; masked
    assert rows[f"{ENV_PREFIX}KAFKA__TRADES_TOPIC"][1] == "default"
    assert len(rows) == len(env_variables())
