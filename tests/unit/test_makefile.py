"""The Makefile says which stack each target is for, and its targets keep to it."""

from __future__ import annotations

import re
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
TARGET = re.compile(r"^([a-zA-Z0-9_-]+):[^=]*?(?:## (.*))?$")


def sections() -> dict[str, dict[str, list[str]]]:
    """{section title: {target: recipe lines}} from the ``##@`` headings."""
    found: dict[str, dict[str, list[str]]] = {}
    section, target = "", None
    for line in MAKEFILE.read_text().splitlines():
        if line.startswith("##@"):
            section, target = line[3:].strip(), None
            found[section] = {}
        elif (m := TARGET.match(line)) and not line.startswith(".PHONY"):
            target = m.group(1)
            found.setdefault(section, {})[target] = []
        elif line.startswith("\t") and target is not None:
            found[section][target].append(line.strip())
    return found


def test_cluster_targets_drive_compose_and_embedded_ones_never_do() -> None:
    found = sections()
    cluster = next(v for k, v in found.items() if "compose" in k.lower())
    for target, recipe in cluster.items():
        assert any("$(COMPOSE)" in r for r in recipe), (
            f"{target} is in the cluster section but runs no compose"
        )
    for title, targets in found.items():
        if "compose" in title.lower():
            continue
        for target, recipe in targets.items():
            assert not any(r.startswith("$(COMPOSE)") for r in recipe), f"{target} ({title}) runs compose"


def test_the_producer_targets_name_their_stack() -> None:
    found = sections()
    cluster = next(v for k, v in found.items() if "compose" in k.lower())
    # the cluster stack's producer is its container: a host process would be a second producer
    assert "producer-start" in cluster
    assert any(
        "embedded-producer" in targets for title, targets in found.items() if "compose" not in title.lower()
    )
