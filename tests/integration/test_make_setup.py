"""``make demo`` installs only what the demo needs; ``make test`` adds the test tooling, from a fresh
machine or after the demo's set-up (checked with ``make -n``: what make would run, nothing installed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infrastructure" / "scripts" / "install-system-packages.sh"


def planned(target: str, venv: Path) -> str:
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_demo_installs_the_runtime_only(tmp_path: Path) -> None:
    plan = planned("demo", tmp_path / ".venv")
    assert "install-system-packages.sh runtime" in plan
    assert "-m pip install -e .\n" in plan
    assert "install-system-packages.sh test" not in plan and ".[dev]" not in plan
    assert "--quiet" not in plan  # pip shows its progress
    assert plan.count('echo "setup ') == 3  # one line per step says what and why


def test_the_tests_install_runtime_and_test_tooling_on_a_fresh_machine(tmp_path: Path) -> None:
    plan = planned("test", tmp_path / ".venv")
    # the dashboard page's chart libraries too (CI runs `make test` alone on a fresh machine)
    for step in ("install-system-packages.sh runtime", "-m pip install -e .\n", "npm ci",
                 "install-system-packages.sh test", "-m pip install -e '.[dev]'", "bin/pytest"):  # fmt: skip
        assert step in plan, step


def test_after_the_demo_the_tests_add_only_their_tooling(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    venv.mkdir()
    (venv / ".installed").touch()  # what the demo's `make setup` leaves
    plan = planned("test", venv)
    assert "install-system-packages.sh runtime" not in plan and "-m pip install -e .\n" not in plan
    assert "install-system-packages.sh test" in plan and "-m pip install -e '.[dev]'" in plan


def test_the_package_script_refuses_an_unknown_group() -> None:
    done = subprocess.run(["bash", str(SCRIPT), "everything"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "unknown group 'everything' (runtime | test)" in done.stderr
