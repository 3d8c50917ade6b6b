"""The generated dashboards type-check as Grafana's ``Dashboard`` (npm ``@grafana/schema``, the
version of the compose stack's Grafana, pinned by monitoring/grafana/schema-check's lockfile)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from monitoring.grafana import typescript_source

SCHEMA_CHECK = Path(__file__).resolve().parents[2] / "monitoring/grafana/schema-check"
TSC_ARGS = ("--noEmit", "--strict", "--skipLibCheck", "--moduleResolution", "bundler", "--module", "esnext")


@pytest.fixture(scope="module")
def tsc(tmp_path_factory: pytest.TempPathFactory):
    """Runs tsc over a source in a scratch folder linked to the schema-check node_modules."""
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "npm missing: make setup-test installs Debian's npm"
    modules = SCHEMA_CHECK / "node_modules"
    if not (modules / "@grafana/schema/package.json").is_file():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SCHEMA_CHECK, check=True, timeout=300)
    folder = tmp_path_factory.mktemp("schema")
    (folder / "node_modules").symlink_to(modules)

    def run(source: str) -> subprocess.CompletedProcess:
        (folder / "dashboards.ts").write_text(source)
        return subprocess.run(
            [node, str(modules / "typescript/bin/tsc"), *TSC_ARGS, "dashboards.ts"],
            cwd=folder, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    return run


def test_dashboards_match_grafanas_schema(tsc) -> None:
    run = tsc(typescript_source())
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_check_rejects_a_wrong_key(tsc) -> None:
    run = tsc(typescript_source().replace('"gridPos"', '"gridPosition"', 1))
    assert run.returncode != 0 and "gridPosition" in run.stdout
