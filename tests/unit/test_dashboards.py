"""The Grafana dashboards are what monitoring/panels.py generates, and the definitions are sound."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from monitoring import grafana
from monitoring.panels import DASHBOARDS, DATASOURCE_TYPES, DATASOURCES

ROOT = Path(__file__).resolve().parents[2]


def test_committed_dashboards_match_the_definitions() -> None:
    assert grafana.stale_files() == [], "run `make dashboards` and commit the result"


def test_a_changed_definition_is_detected(tmp_path: Path) -> None:
    for name, text in grafana.rendered().items():
        (tmp_path / name).write_text(text)
    assert grafana.stale_files(tmp_path) == []
    first = next(iter(grafana.rendered()))
    (tmp_path / first).write_text((tmp_path / first).read_text().replace("Market", "Markets", 1))
    (tmp_path / "extra.json").write_text("{}")
    assert grafana.stale_files(tmp_path) == sorted([first, "extra.json"])


def test_datasources_are_the_provisioned_ones() -> None:
    provisioned = yaml.safe_load(
        (ROOT / "monitoring/grafana/provisioning/datasources/lakehouse.yml").read_text()
    )
    by_uid = {d["uid"]: d["type"] for d in provisioned["datasources"]}
    for source, uid in DATASOURCES.items():
        assert by_uid[uid] == DATASOURCE_TYPES[source]
    for dashboard in grafana.rendered().values():
        for panel in json.loads(dashboard)["panels"]:
            for target in panel["targets"]:
                assert target["datasource"] in (
                    {"type": t, "uid": DATASOURCES[s]} for s, t in DATASOURCE_TYPES.items()
                )
                assert ("expr" in target) != ("rawSQL" in target)


def test_dashboards_are_provisioned_from_the_mounted_folder(compose_stack) -> None:
    provider = yaml.safe_load((ROOT / "monitoring/grafana/provisioning/dashboards/lakehouse.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = compose_stack.services["grafana"]["volumes"]
    assert any(m.startswith("./monitoring/grafana/dashboards:") and m.split(":")[1] == path for m in mounts)


def test_panel_keys_are_unique_and_sql_panels_declare_columns() -> None:
    keys = [p.key for d in DASHBOARDS for p in d.panels]
    assert len(keys) == len(set(keys))
    for panel in (p for d in DASHBOARDS for p in d.panels):
        assert (panel.source == "trino") == bool(panel.columns), panel.key
        assert sum(1 for _ in panel.queries) >= 1
    titles = {d.title for d in DASHBOARDS}
    assert titles == {"Market Overview", "Pipeline Health"}
