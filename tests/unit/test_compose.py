"""docker-compose.yml checked statically: services, health, dependencies, pins, variables, ports, secrets, memory."""

from __future__ import annotations

import re

import pytest
import yaml

from infrastructure.settings import Settings
from tests.fixtures.compose import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    ComposeStack,
    MissingVariable,
    environment_of,
    example_env,
    interpolate,
    interpolate_tree,
    variables_used,
)

REQUIRED_SERVICES = {
    "kafka", "seaweedfs", "postgres", "nessie", "spark-streaming", "trino", "prometheus", "grafana",
    "coinbase-producer", "binance-producer", "coingecko-producer", "lakehouse-init", "airflow-init", "airflow-apiserver", "airflow-scheduler",
    "airflow-dag-processor", "airflow-triggerer",
}  # fmt: skip
MEMORY_BUDGET_BYTES = 8 * 1024**3
CONDITIONS = {"service_healthy", "service_completed_successfully"}


def is_one_shot(service: dict) -> bool:
    return service.get("restart") == "no"


def mem_bytes(limit: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)b?", str(limit).lower()).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


def test_every_service_of_the_stack_exists(compose_stack: ComposeStack) -> None:
    assert set(compose_stack.services) >= REQUIRED_SERVICES


def test_long_running_services_have_healthchecks_and_one_shots_do_not_restart(
    compose_stack: ComposeStack,
) -> None:
    for name, service in compose_stack.services.items():
        if is_one_shot(service):
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
    one_shots = {n for n, s in compose_stack.services.items() if is_one_shot(s)}
    assert {"lakehouse-init", "airflow-init", "seaweedfs-init"} <= one_shots


def test_dependencies_wait_for_health_or_completion(compose_stack: ComposeStack) -> None:
    services = compose_stack.services
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must use conditions, not a list"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec.get("condition")
            assert condition in CONDITIONS, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for health of {target}"
            else:
                assert is_one_shot(services[target]), f"{name} waits for {target} to complete"


def test_every_image_is_pinned(compose_stack: ComposeStack) -> None:
    for name, service in compose_stack.services.items():
        image = service.get("image")
        assert image, f"{name} has no image name"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag not in {"latest", "main", "nightly", ""}, f"{name}: {image} is not pinned"
        # upstream images pin a release (x.y[.z], or Trino's single release number), not a moving major
        if "build" not in service:
            assert re.match(r"v?\d+\.\d+|\d{3,}$", tag), f"{name}: {image} pins no release"


def test_every_variable_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    undocumented = variables_used(COMPOSE_FILE.read_text()) - documented
    assert not undocumented, f"document in .env.example: {sorted(undocumented)}"


def test_missing_secret_stops_compose_with_a_message_naming_it() -> None:
    env = example_env(placeholder_secrets=False)
    with pytest.raises(MissingVariable, match=r"set \w+ in \.env"):
        interpolate_tree(yaml.safe_load(COMPOSE_FILE.read_text()), env)
    assert interpolate("${X:?set X in .env}", {"X": "v"}) == "v"
    assert interpolate("a$${B}${C:-d}", {}) == "a${B}d"


def test_host_ports_bind_to_loopback_by_default(compose_stack: ComposeStack) -> None:
    published = 0
    for name, service in compose_stack.services.items():
        for port in service.get("ports", []):
            assert isinstance(port, str), f"{name}: write ports as HOST_IP:HOST:CONTAINER strings"
            host_ip = port.split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port}"
            published += 1
    assert published >= 8


SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|ACCESS_KEY|TOKEN|CREDENTIAL|\.name$|\.secret$", re.I)


def test_no_secret_literal_in_the_compose_file(compose_stack: ComposeStack) -> None:
    for name, service in compose_stack.raw["services"].items():
        for key, value in environment_of(service).items():
            if SECRET_KEY.search(key) and not key.startswith("_AIRFLOW_WWW_USER_USERNAME"):
                assert re.fullmatch(r".*\$\{[A-Z0-9_]+:\?[^}]+\}.*", value), (
                    f"{name}.{key} must come from .env as ${{VAR:?...}}, not a literal"
                )
    assert "BEGIN PRIVATE KEY" not in COMPOSE_FILE.read_text()


def waits_for_a_one_shot(name: str, services: dict[str, dict]) -> bool:
    """True if ``name`` (transitively) starts only after an init job completed."""
    for target, spec in services[name].get("depends_on", {}).items():
        if spec.get("condition") == "service_completed_successfully" or waits_for_a_one_shot(
            target, services
        ):
            return True
    return False


def test_memory_limits_fit_in_8_gib(compose_stack: ComposeStack) -> None:
    services = compose_stack.services
    limits = {name: mem_bytes(s["mem_limit"]) for name, s in services.items() if s.get("mem_limit")}
    assert set(limits) == set(services), f"services without mem_limit: {sorted(set(services) - set(limits))}"
    init_jobs = {n for n, s in services.items() if is_one_shot(s)}
    # steady state: every long-running service at once
    steady = sum(v for n, v in limits.items() if n not in init_jobs)
    assert steady <= MEMORY_BUDGET_BYTES, f"steady state {steady / 1024**2:.0f} MiB > 8 GiB"
    # start-up: the init jobs with everything that does not wait for one of them
    starting = sum(v for n, v in limits.items() if n in init_jobs or not waits_for_a_one_shot(n, services))
    assert starting <= MEMORY_BUDGET_BYTES, f"start-up {starting / 1024**2:.0f} MiB > 8 GiB"


def test_the_documented_memory_table_is_the_compose_files_and_holds_what_was_measured(
    compose_stack: ComposeStack,
) -> None:
    """docs/compose.md lists every container's limit (as the compose file sets it) and, where the
    benchmarks measured the same process natively, its peak: no limit below its measured need."""
    text = (COMPOSE_FILE.parent / "docs/compose.md").read_text()
    section = text.split("## Memory budget", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([a-z0-9-]+) \| (\d+) \| ?(\d*) ?\|", section, re.MULTILINE)
    documented = {name: int(limit) for name, limit, _ in rows}
    limits = {name: mem_bytes(s["mem_limit"]) // 2**20 for name, s in compose_stack.services.items()}
    assert documented == limits
    for name, limit, measured in rows:
        if measured:
            assert int(measured) <= int(limit), f"{name}: measured {measured} MiB over its {limit} MiB limit"
    # the README repeats the resized ones: the same limits
    readme = (COMPOSE_FILE.parent / "README.md").read_text()
    repeated = re.findall(r"^\s*\| ([a-z0-9-]+)[^|]*\| (\d+) \| \d", readme, re.MULTILINE)
    assert repeated and all(limits[name] == int(limit) for name, limit in repeated), repeated


def test_project_services_share_one_build_per_image(compose_stack: ComposeStack) -> None:
    builds: dict[str, tuple] = {}
    for service in compose_stack.services.values():
        if "build" in service:
            key = (
                (service["build"]["context"], service["build"].get("dockerfile", "Dockerfile")),
                tuple(sorted((service["build"].get("args") or {}).items())),
            )
            assert builds.setdefault(service["image"], key) == key, service["image"]
    assert len(builds) == 4


DOCKERFILES = {
    "lakehouse-crypto/app": "infrastructure/docker/app.Dockerfile",
    "lakehouse-crypto/spark": "infrastructure/spark/Dockerfile",
    "lakehouse-crypto/airflow": "infrastructure/docker/airflow.Dockerfile",
}


def test_every_service_of_the_project_can_write_its_data_dir(compose_stack: ComposeStack) -> None:
    """A service running this project's code writes under LAKEHOUSE_DATA_DIR (dbt target, quality
    results, checkpoints): a volume is mounted there and its image makes the folder for its user."""
    for name, service in compose_stack.services.items():
        data_dir = environment_of(service).get("LAKEHOUSE_DATA_DIR")
        if data_dir is None:
            continue
        mounts = {str(v).split(":")[1] for v in service.get("volumes", []) if str(v).count(":") >= 1}
        assert data_dir in mounts, f"{name}: nothing is mounted at LAKEHOUSE_DATA_DIR={data_dir}"
        dockerfile = (ROOT / DOCKERFILES[service["image"].rpartition(":")[0]]).read_text()
        assert re.search(rf"mkdir -p {re.escape(data_dir)}\b.*chown", dockerfile), (
            f"{name}: its image does not create {data_dir} for the user it runs as"
        )


def test_images_that_run_spark_install_a_jdk_not_a_jre() -> None:
    """Spark 4 calls jmap, which only a JDK has (SPARK-49117): a JRE image fails at run time."""
    for image in ("lakehouse-crypto/spark", "lakehouse-crypto/airflow"):
        dockerfile = (ROOT / DOCKERFILES[image]).read_text()
        assert re.search(r"openjdk-\d+-jdk(-headless)?\b", dockerfile), f"{image} installs no JDK"
        assert not re.search(r"openjdk-\d+-jre", dockerfile), f"{image} installs a JRE"


# the design card's service URLs: users follow it, so these are the defaults (still overridable)
DESIGN_CARD_PORTS = {"grafana": 3000, "airflow-apiserver": 8081, "spark-streaming": 8090, "trino": 8082,
                     "prometheus": 9090, "nessie": 19120}  # fmt: skip


def test_the_design_cards_service_urls_are_the_default_host_ports(compose_stack: ComposeStack) -> None:
    from infrastructure.settings import Settings

    for name, port in DESIGN_CARD_PORTS.items():
        published = {int(p.split(":")[1]) for p in compose_stack.services[name].get("ports", [])}
        assert port in published, f"{name} publishes {published}, the design card says {port}"
    embedded = Settings(_env_file=None)
    assert (embedded.stack.airflow_port, embedded.stack.prometheus_port) == (8081, 9090)
    assert embedded.trino.port == 8082  # a host client of the compose stack


@pytest.mark.parametrize(
    ("service", "source", "port"),
    [
        ("coinbase-producer", "coinbase", "producer_port"),
        ("binance-producer", "binance", "binance_producer_port"),
        ("coingecko-producer", "coingecko", "coingecko_producer_port"),
    ],
)
def test_each_venue_runs_in_its_own_producer_container_on_its_metrics_port(
    compose_stack: ComposeStack, service: str, source: str, port: str
) -> None:
    """One container per venue, as the embedded stack runs one process per venue: the healthcheck
    and the published port are the port that venue's producer serves (metrics.*_port)."""
    spec = compose_stack.services[service]
    assert spec["command"] == ["ingest", "--source", source]
    number = getattr(Settings(_env_file=None).metrics, port)
    assert f"http://127.0.0.1:{number}/metrics" in " ".join(spec["healthcheck"]["test"])
    assert [str(p).rsplit(":", 1)[1] for p in spec["ports"]] == [str(number)]
    assert spec["restart"] == "unless-stopped"
