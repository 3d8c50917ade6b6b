"""Alert rules: ``promtool test rules`` fires and clears each rule, and both Prometheus configs
(compose, and the embedded template as the supervisor renders it) load the rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infrastructure.settings import Settings
from infrastructure.supervisor import PROMETHEUS_TEMPLATE, RULES_DIR, prometheus_config

ROOT = Path(__file__).resolve().parents[2]
RULE_TESTS = ROOT / "monitoring/prometheus/tests/alerts_test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool missing: make setup installs Debian's prometheus package"
    return found


def alert_names() -> set[str]:
    return {
        rule["alert"]
        for path in RULES_DIR.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_promtool_unit_tests_pass(promtool: str) -> None:
    run = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_every_rule_has_a_firing_and_a_quiet_case() -> None:
    cases: dict[str, set[bool]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test["alert_rule_test"]:
            cases.setdefault(case["alertname"], set()).add(bool(case["exp_alerts"]))
    assert len(alert_names()) >= 8
    assert {name: cases.get(name, set()) for name in alert_names()} == {
        name: {True, False} for name in alert_names()
    }


def test_embedded_config_loads_the_rules_and_scrapes_the_pushgateway(promtool: str, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, metrics={"pushgateway_url": "http://127.0.0.1:29091"})
    password_file = tmp_path / "pushgateway.password"
    password_file.write_text("secret")
    rendered = prometheus_config(settings, PROMETHEUS_TEMPLATE.read_text(), password_file)
    config = yaml.safe_load(rendered)
    gateway = next(job for job in config["scrape_configs"] if job["job_name"] == "pushgateway")
    assert gateway["honor_labels"] is True
    assert gateway["static_configs"][0]["targets"] == ["127.0.0.1:29091"]
    assert gateway["basic_auth"] == {"username": "lakehouse", "password_file": str(password_file)}
    path = tmp_path / "prometheus.yml"
    path.write_text(rendered)
    run = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(alert_names())} rules found" in run.stdout


def test_compose_config_loads_the_same_rules(promtool: str) -> None:
    path = ROOT / "monitoring/prometheus/prometheus.compose.yml"
    run = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(alert_names())} rules found" in run.stdout
    jobs = {job["job_name"]: job for job in yaml.safe_load(path.read_text())["scrape_configs"]}
    assert jobs["pushgateway"]["honor_labels"] is True
    targets = {
        job: [
            (target, static.get("labels", {}))
            for static in config["static_configs"]
            for target in static["targets"]
        ]
        for job, config in jobs.items()
    }
    m = Settings(_env_file=None).metrics
    # every stage: each venue's producer and each bronze stream on their settings' ports, labelled as
    # the embedded stack labels them; batch jobs, Airflow's StatsD
    assert targets["producer"] == [
        (f"coinbase-producer:{m.producer_port}", {"exchange": "coinbase"}),
        (f"binance-producer:{m.binance_producer_port}", {"exchange": "binance"}),
    ]
    assert targets["reference"] == [
        (f"coingecko-producer:{m.coingecko_producer_port}", {"exchange": "coingecko"})
    ]
    assert targets["bronze-writer"] == [
        (f"spark-streaming:{m.bronze_port}", {}),
        (f"spark-streaming:{m.bronze_reference_port}", {"stream": "reference_prices"}),
    ]
    assert targets["pushgateway"] == [("pushgateway:9091", {})]
    assert targets["airflow"] == [("statsd-exporter:9102", {})]
