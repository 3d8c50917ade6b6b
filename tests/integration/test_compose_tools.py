"""The compose stack checked by real programs, without a Docker engine.

- ``docker-compose config`` (Debian's docker-compose, installed by ``make setup-test``) parses and
  validates the file with a copy of .env.example plus test secrets;
- ``promtool check config`` validates the stack's Prometheus config;
- the SeaweedFS container's own scripts (start with an identities file, create the bucket) run
  against the same ``weed`` version from the venv, on free 127.0.0.1 ports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from infrastructure import services
from tests.fixtures.compose import ROOT, example_env

SEAWEED_SCRIPTS = ROOT / "infrastructure/docker/seaweedfs"


def docker_compose_config(
    project: Path, dotenv: dict[str, str], *options: str
) -> subprocess.CompletedProcess:
    """``docker-compose config`` in a project dir that mirrors the repository with the given .env."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (make setup-test installs Debian's docker-compose)")
    for entry in ROOT.iterdir():
        if entry.name not in {".env", ".git", ".venv", ".lakehouse"}:
            (project / entry.name).symlink_to(entry)
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
    # the user's own shell must not fill in what .env leaves out
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "COMPOSE_"))}
    return subprocess.run(
        [binary, *options, "config"], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


def test_docker_compose_validates_the_file(tmp_path: Path) -> None:
    result = docker_compose_config(tmp_path, example_env())
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert "spark-streaming" in resolved["services"] and "kafka" in resolved["services"]
    for service in resolved["services"].values():
        for port in service.get("ports", []):
            # docker-compose v1 prints "IP:HOST:CONTAINER", v2 a mapping
            host_ip = port.split(":")[0] if isinstance(port, str) else port.get("host_ip")
            assert host_ip == "127.0.0.1", port


def test_docker_compose_refuses_to_run_without_the_secrets(tmp_path: Path) -> None:
    result = docker_compose_config(tmp_path, example_env(placeholder_secrets=False))
    assert result.returncode != 0
    assert "in .env" in result.stderr


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: make setup installs Debian's prometheus package"
    result = subprocess.run(
        [promtool, "check", "config", str(ROOT / "monitoring/prometheus/prometheus.compose.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_seaweedfs_container_scripts_require_keys_and_create_the_bucket(tmp_path: Path) -> None:
    import pyarrow.fs as pafs

    ports = {name: services.free_port(grpc_too=True) for name in ("master", "volume", "filer", "s3")}
    metrics = services.free_port()
    key, secret = "compose-test-key", "compose-test-secret"
    env = {
        **os.environ,
        "PATH": f"{Path(services.venv_bin('weed')).parent}:{os.environ['PATH']}",
        "S3_ACCESS_KEY": key,
        "S3_SECRET_KEY": secret,
        "WEED_DATA_DIR": str(tmp_path / "data"),
        "WEED_S3_CONFIG": str(tmp_path / "s3.json"),
        "WEED_IP": "127.0.0.1",
        "WEED_BIND": "127.0.0.1",
        "WEED_MASTER_PORT": str(ports["master"]),
        "WEED_VOLUME_PORT": str(ports["volume"]),
        "WEED_FILER_PORT": str(ports["filer"]),
        "WEED_S3_PORT": str(ports["s3"]),
        "WEED_METRICS_PORT": str(metrics),
        # the compose file's security.toml-as-environment
        "WEED_JWT_SIGNING_KEY": "compose-write-key",
        "WEED_JWT_SIGNING_READ_KEY": "compose-read-key",
        "WEED_JWT_FILER_SIGNING_KEY": "compose-write-key",
        "WEED_JWT_FILER_SIGNING_READ_KEY": "compose-read-key",
    }
    log = (tmp_path / "weed.log").open("w")
    proc = subprocess.Popen(
        ["sh", str(SEAWEED_SCRIPTS / "start.sh")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        s3 = f"http://127.0.0.1:{ports['s3']}"
        deadline = time.monotonic() + 60
        while not services.http_ok(f"{s3}/healthz"):  # the compose healthcheck's probe
            assert proc.poll() is None and time.monotonic() < deadline, services.tail_of(
                tmp_path / "weed.log"
            )
            time.sleep(0.2)
        assert oct((tmp_path / "s3.json").stat().st_mode & 0o777) == "0o600"

        create = ["sh", str(SEAWEED_SCRIPTS / "create-bucket.sh")]
        bucket_env = {**env, "WEED_MASTER": f"127.0.0.1:{ports['master']}", "BUCKET": "warehouse"}
        first = subprocess.run(create, env=bucket_env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0 and "created" in first.stdout, first.stdout + first.stderr
        again = subprocess.run(create, env=bucket_env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "exists" in again.stdout  # idempotent

        def fs(access: str, secret_key: str) -> pafs.S3FileSystem:
            return pafs.S3FileSystem(
                access_key=access,
                secret_key=secret_key,
                endpoint_override=s3,
                scheme="http",
                region="us-east-1",
            )

        fs(key, secret).create_dir("warehouse/probe")
        with fs(key, secret).open_output_stream("warehouse/probe/x.txt") as out:
            out.write(b"ok")
        assert fs(key, secret).get_file_info("warehouse/probe/x.txt").size == 2
        with pytest.raises(OSError):
            fs(key, "wrong-secret").get_file_info(pafs.FileSelector("warehouse"))
        with pytest.raises(OSError):
            pafs.S3FileSystem(anonymous=True, endpoint_override=s3, scheme="http").get_file_info(
                pafs.FileSelector("warehouse")
            )

        # beside S3 nothing answers without credentials; the compose health check's master probe does
        master, filer, volume = (f"http://127.0.0.1:{ports[n]}" for n in ("master", "filer", "volume"))
        assert services.http_ok(f"{master}/cluster/healthz")
        for url, method in [(f"{filer}/buckets/warehouse/", "GET"), (f"{filer}/buckets/warehouse/e", "PUT"),
                            (f"{master}/dir/assign", "GET"), (f"{master}/submit", "POST"),
                            (f"{volume}/1,0000000001", "GET"), (f"{volume}/1,0000000001", "PUT")]:  # fmt: skip
            request = urllib.request.Request(url, data=b"x" if method != "GET" else None, method=method)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            assert refused.value.code in (401, 404), (url, refused.value.code)
    finally:
        services.stop(proc.pid)
        proc.wait(timeout=15)
        log.close()
