"""``catalog.auth=none`` (compose: Nessie runs without an auth server) reaches DuckDB too: the
attach sends no OAuth2 token request. Against a real Iceberg REST catalog that needs no credentials
(a SeaweedFS started without S3 identities, standing in for such a Nessie) the attach works and
lists the catalog; with OAuth2, as the engine always did before, the token request is refused and
nothing attaches (so ``lakehouse query`` and the completeness check failed in compose)."""

from __future__ import annotations

import dataclasses
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from infrastructure import services
from infrastructure.services import SeaweedPorts
from orchestration.local_stack import SeaweedFS, start_on_free_ports
from processing.duckdb_engine import connect
from tests.fixtures.services import settings_for


def _answers(catalog_uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{catalog_uri}/v1/config?warehouse=s3://warehouse", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def open_catalog(tmp_path: Path) -> Iterator[SeaweedFS]:
    """SeaweedFS with no S3 identities: its catalog answers reads without credentials."""

    def build() -> SeaweedFS:
        ports = SeaweedPorts(*(services.free_port(grpc_too=True) for _ in range(7)))
        (tmp_path / "seaweedfs").mkdir(exist_ok=True)
        spec = services.seaweedfs_spec(
            tmp_path / "seaweedfs", "127.0.0.1", ports, tmp_path / "none.json", "warehouse", ("", "")
        )
        uri = f"http://127.0.0.1:{ports.iceberg}"
        spec = dataclasses.replace(
            spec,
            argv=tuple(a for a in spec.argv if not a.startswith("-s3.config=")),
            ready_probe=lambda: _answers(uri),
        )
        return SeaweedFS(spec=spec, s3_endpoint=f"http://127.0.0.1:{ports.s3}", catalog_uri=uri,
                         access_key="anonymous", secret_key="anonymous")  # fmt: skip

    store = start_on_free_ports(build)
    try:
        yield store
    finally:
        store.stop()


def test_duckdb_attaches_a_catalog_without_auth_when_told(open_catalog: SeaweedFS, tmp_path: Path) -> None:
    settings = settings_for(seaweedfs=open_catalog, data_dir=tmp_path / "data")
    no_auth = settings.model_copy(update={"catalog": settings.catalog.model_copy(update={"auth": "none"})})
    con = connect(no_auth)
    attached = con.execute("SELECT type FROM duckdb_databases() WHERE database_name = 'lake'").fetchall()
    assert attached == [("iceberg",)]
    con.execute("SELECT * FROM duckdb_schemas() WHERE database_name = 'lake'").fetchall()  # lists it
    secrets = {name for (name,) in con.execute("SELECT name FROM duckdb_secrets()").fetchall()}
    assert "lake_catalog" not in secrets  # no OAuth2 client credentials made or sent
    with pytest.raises(duckdb.Error, match="OAuth2"):
        connect(settings)  # oauth2 against a catalog with no client registry: refused
