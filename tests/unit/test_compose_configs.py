"""Config files of the compose stack: Trino catalog, Nessie, Spark defaults, Grafana, Prometheus targets.

Key names are checked against the properties documented for the pinned versions (listed here with
where they are documented), so a misspelt key fails in CI instead of being ignored at run time.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from infrastructure.settings import Settings
from processing.spark_session import spark_conf
from tests.fixtures.compose import ROOT, ComposeStack, environment_of

TRINO_CATALOG = ROOT / "trino/catalog/iceberg.properties"
SPARK_DEFAULTS = ROOT / "infrastructure/spark/conf/spark-defaults.conf"
PROMETHEUS = ROOT / "monitoring/prometheus/prometheus.compose.yml"
GRAFANA_DATASOURCES = ROOT / "monitoring/grafana/provisioning/datasources/lakehouse.yml"

# trino.io/docs/476: connector/iceberg (general + REST catalog), object-storage/file-system-s3
TRINO_ICEBERG_KEYS = {
    "connector.name", "iceberg.catalog.type", "iceberg.file-format", "iceberg.compression-codec",
    "iceberg.rest-catalog.uri", "iceberg.rest-catalog.warehouse", "iceberg.rest-catalog.security",
    "iceberg.rest-catalog.oauth2.token", "iceberg.rest-catalog.oauth2.credential",
    "iceberg.rest-catalog.vended-credentials-enabled", "fs.native-s3.enabled", "s3.endpoint",
    "s3.region", "s3.path-style-access", "s3.aws-access-key", "s3.aws-secret-key",
}  # fmt: skip
# projectnessie.org: guides/iceberg-rest, configuration (version store, catalog, S3 default options)
NESSIE_KEYS = [
    r"nessie\.version\.store\.type",
    r"nessie\.version\.store\.persist\.jdbc\.datasource",
    r"quarkus\.datasource\.postgresql\.(jdbc\.url|username|password)",
    r"nessie\.catalog\.default-warehouse",
    r"nessie\.catalog\.warehouses\.[a-z0-9-]+\.location",
    r"nessie\.catalog\.service\.s3\.default-options\.(endpoint|path-style-access|region|access-key)",
]
# spark.apache.org/docs/4.0.x/configuration + iceberg.apache.org/docs/1.10.0/spark-configuration
SPARK_KEYS = {
    "spark.master", "spark.driver.memory", "spark.sql.extensions", "spark.sql.session.timeZone",
    "spark.sql.shuffle.partitions", "spark.ui.showConsoleProgress",
}  # fmt: skip
# iceberg.apache.org/docs/1.10.0: spark-configuration (catalog), aws (S3FileIO)
ICEBERG_CATALOG_SUFFIXES = {
    "", ".type", ".uri", ".warehouse", ".io-impl", ".s3.endpoint", ".s3.path-style-access",
    ".s3.access-key-id", ".s3.secret-access-key", ".client.region", ".credential",
}  # fmt: skip


def properties(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def test_trino_catalog_uses_nessie_rest_and_native_s3(compose_stack: ComposeStack) -> None:
    catalog = properties(TRINO_CATALOG)
    assert set(catalog) <= TRINO_ICEBERG_KEYS, set(catalog) - TRINO_ICEBERG_KEYS
    assert catalog["connector.name"] == "iceberg" and catalog["iceberg.catalog.type"] == "rest"
    assert (
        catalog["iceberg.rest-catalog.uri"]
        == compose_stack.services["spark-streaming"]["environment"]["LAKEHOUSE_CATALOG__URI"]
    )
    assert catalog["fs.native-s3.enabled"] == "true" and catalog["s3.path-style-access"] == "true"
    assert (
        catalog["s3.endpoint"]
        == compose_stack.services["spark-streaming"]["environment"]["LAKEHOUSE_S3__ENDPOINT"]
    )
    # credentials are never in the file: ${ENV:...} names the container variables, which must exist
    referenced = set(re.findall(r"\$\{ENV:(\w+)\}", TRINO_CATALOG.read_text()))
    assert {"S3_ACCESS_KEY", "S3_SECRET_KEY"} <= referenced
    assert referenced <= set(environment_of(compose_stack.services["trino"]))


def test_nessie_configuration_keys_are_documented_and_consistent(compose_stack: ComposeStack) -> None:
    env = environment_of(compose_stack.services["nessie"])
    props = {k: v for k, v in env.items() if "." in k}
    secret_ref = props["nessie.catalog.service.s3.default-options.access-key"]
    secret_name = secret_ref.removeprefix("urn:nessie-secret:quarkus:")
    assert secret_name != secret_ref, "S3 keys go through a Nessie secret reference"
    for key in props:
        if key in (f"{secret_name}.name", f"{secret_name}.secret"):
            continue
        assert any(re.fullmatch(p, key) for p in NESSIE_KEYS), f"undocumented Nessie property {key}"
    assert props["nessie.version.store.type"] == "JDBC2"
    default = props["nessie.catalog.default-warehouse"]
    assert props[f"nessie.catalog.warehouses.{default}.location"] == "s3://warehouse/"
    assert props["nessie.catalog.service.s3.default-options.path-style-access"] == "true"
    # clients name the same warehouse Nessie defines
    assert compose_stack.services["spark-streaming"]["environment"]["LAKEHOUSE_CATALOG__WAREHOUSE"] == default
    assert properties(TRINO_CATALOG)["iceberg.rest-catalog.warehouse"] == default


def test_spark_defaults_hold_only_static_documented_keys() -> None:
    conf = {}
    for line in SPARK_DEFAULTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split(None, 1)
            conf[key] = value.strip()
    assert set(conf) <= SPARK_KEYS, set(conf) - SPARK_KEYS
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert "IcebergSparkSessionExtensions" in conf["spark.sql.extensions"]


def test_spark_catalog_conf_comes_from_settings() -> None:
    settings = Settings(
        _env_file=None,
        s3={"endpoint": "http://seaweedfs:8333", "access_key": "k", "secret_key": "s"},
        catalog={"uri": "http://nessie:19120/iceberg/", "warehouse": "warehouse", "auth": "none"},
    )
    conf = spark_conf(settings)
    prefix = "spark.sql.catalog.lakehouse"
    catalog_keys = {k.removeprefix(prefix) for k in conf if k.startswith(prefix)}
    assert catalog_keys <= ICEBERG_CATALOG_SUFFIXES, catalog_keys - ICEBERG_CATALOG_SUFFIXES
    assert conf[f"{prefix}.uri"] == "http://nessie:19120/iceberg/"
    assert conf[f"{prefix}.s3.access-key-id"] == "k" and conf[f"{prefix}.s3.secret-access-key"] == "s"
    assert conf["spark.sql.defaultCatalog"] == "lakehouse"
    # no OAuth against a catalog that was not given a credential (Nessie here)
    assert f"{prefix}.credential" not in conf
    # SeaweedFS's catalog (embedded) authenticates with the S3 key pair unless told otherwise
    seaweed = Settings(_env_file=None, s3={"access_key": "k", "secret_key": "s"})
    assert spark_conf(seaweed)[f"{prefix}.credential"] == "k:s"


def test_grafana_datasources_point_at_the_stack(compose_stack: ComposeStack) -> None:
    sources = {d["name"]: d for d in yaml.safe_load(GRAFANA_DATASOURCES.read_text())["datasources"]}
    assert sources["Prometheus"]["url"] == "http://prometheus:9090"
    assert sources["Trino"]["url"] == "http://trino:8080"
    # the plugin reads the Trino user from basic auth; a jsonData.user is ignored (queries ran as grafana)
    trino = sources["Trino"]
    assert trino["basicAuth"] is True and trino["basicAuthUser"] == "${TRINO_USER}"
    assert "user" not in trino.get("jsonData", {})
    assert environment_of(compose_stack.services["grafana"])["TRINO_USER"]


def test_grafana_bakes_a_pinned_trino_plugin_in_at_build_time(compose_stack: ComposeStack) -> None:
    grafana = compose_stack.services["grafana"]
    # installing at start (GF_PLUGINS_PREINSTALL) fails silently offline: it must be in the image
    assert "GF_PLUGINS_PREINSTALL" not in environment_of(grafana)
    args = grafana["build"]["args"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["TRINO_PLUGIN_VERSION"])
    major, minor = (int(x) for x in args["GRAFANA_VERSION"].split(".")[:2])
    assert (major, minor) >= (10, 4), "trino-datasource 1.1 needs Grafana 10.4 or later"
    dockerfile = (ROOT / grafana["build"]["context"] / "Dockerfile").read_text()
    assert "plugins install trino-datasource" in dockerfile and "plugin.json" in dockerfile
    assert "trino-datasource" in " ".join(grafana["healthcheck"]["test"])


def test_prometheus_scrapes_services_that_exist(compose_stack: ComposeStack) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    hosts = {
        target.split(":")[0]
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert hosts - {"localhost"} <= set(compose_stack.services)
    assert {"coinbase-producer", "binance-producer", "coingecko-producer", "spark-streaming"} <= hosts
    mounted = " ".join(compose_stack.services["prometheus"]["volumes"])
    assert "prometheus.compose.yml:/etc/prometheus/prometheus.yml" in mounted


def test_prometheus_scrapes_trinos_openmetrics_as_a_user(compose_stack: ComposeStack) -> None:
    """Trino serves /metrics on the coordinator's HTTP port and answers 401 to a request that names
    no user; Prometheus must send one."""
    jobs = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]}
    trino = jobs["trino"]
    assert trino["metrics_path"] == "/metrics"
    assert trino["basic_auth"]["username"]
    (target,) = trino["static_configs"][0]["targets"]
    host, port = target.split(":")
    # the coordinator's HTTP port inside the network: the one the service publishes to the host
    assert any(str(p).endswith(f":{port}") for p in compose_stack.services[host]["ports"])


def test_pyiceberg_client_sends_no_credential_when_auth_is_none(monkeypatch) -> None:
    from infrastructure import catalog

    seen: list[dict] = []
    monkeypatch.setattr(catalog, "LakehouseCatalog", lambda name, **props: seen.append(props))
    keys = {"access_key": "k", "secret_key": "s"}
    catalog.load_catalog(Settings(_env_file=None, s3=keys, catalog={"auth": "none"}))
    catalog.load_catalog(Settings(_env_file=None, s3=keys))
    assert "credential" not in seen[0]
    assert seen[1]["credential"] == "k:s"


def test_airflow_options_exist_in_the_pinned_airflow(compose_stack: ComposeStack) -> None:
    import importlib.util

    # the option catalogue shipped with the installed Airflow (same minor as the image), read
    # without importing Airflow
    package = Path(importlib.util.find_spec("airflow").origin).parent
    options = yaml.safe_load((package / "config_templates/config.yml").read_text())
    checked = 0
    for name in ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"):
        for key in environment_of(compose_stack.services[name]):
            if key.startswith("AIRFLOW__"):
                section, option = key.removeprefix("AIRFLOW__").lower().split("__", 1)
                assert option in (options.get(section) or {}).get("options", {}), f"{name}: unknown {key}"
                checked += 1
    assert checked >= 40


def test_nessie_gc_runs_beside_nessie_with_its_own_database(compose_stack: ComposeStack) -> None:
    """Nessie sets gc.enabled=false, so without its GC tool the warehouse only grows."""
    services = compose_stack.services
    gc, nessie = services["nessie-gc"], services["nessie"]
    assert gc["image"].rpartition(":")[2] == nessie["image"].rpartition(":")[2], "same version line"
    env = environment_of(gc)
    assert env["NESSIE_GC_URI"] == "http://nessie:19120/api/v2"
    assert (
        env["NESSIE_GC_JDBC_URL"].endswith("/nessie_gc")
        and env["NESSIE_GC_JDBC_SCHEMA"] == "CREATE_IF_NOT_EXISTS"
    )
    assert re.fullmatch(r"P(T\d+H|\d+D)", env["NESSIE_GC_DEFAULT_CUTOFF"]), "a duration the tool parses"
    iceberg = dict(kv.split("=", 1) for kv in env["NESSIE_GC_ICEBERG"].split(","))
    assert iceberg["s3.endpoint"] == "http://seaweedfs:8333" and iceberg["s3.path-style-access"] == "true"
    init = (ROOT / "infrastructure/docker/postgres/init-databases.sh").read_text()
    assert "CREATE DATABASE nessie_gc OWNER nessie_gc" in init
    assert "NESSIE_GC_DB_PASSWORD" in environment_of(services["postgres"])
    assert "nessie-gc.ok" in " ".join(gc["healthcheck"]["test"]) and gc["restart"] == "unless-stopped"


def test_seaweedfs_master_purges_the_filer_journal(compose_stack: ComposeStack) -> None:
    """Without a purge the filer's metadata journal grows with every commit (docs/maintenance.md)."""
    env = environment_of(compose_stack.services["seaweedfs"])
    script = [line.strip() for line in env["WEED_MASTER_MAINTENANCE_SCRIPTS"].splitlines() if line.strip()]
    assert script[0] == "lock" and script[-1] == "unlock"
    assert re.fullmatch(r"fs\.log\.purge -daysAgo=\d+", script[1]) and "volume.vacuum" in script
    assert 1 <= int(env["WEED_MASTER_MAINTENANCE_SLEEP_MINUTES"]) <= 24 * 60


def test_every_container_log_is_bounded(compose_stack: ComposeStack) -> None:
    for name, service in compose_stack.services.items():
        logging = service.get("logging") or {}
        assert logging.get("driver") == "json-file", f"{name}: unbounded container log"
        assert logging["options"]["max-size"].endswith("m") and int(logging["options"]["max-file"]) >= 1, name
