"""Keeps one long-running worker of the embedded stack (ingest, the bronze writer) running.

``python -m infrastructure.watchdog NAME STATE_FILE -- COMMAND...`` runs COMMAND; when it exits
unasked with a failure (a crash, a SIGKILL) it is started again after a capped exponential backoff
(``tenacity``), one line per restart. A clean exit (code 0: a ``--duration`` ran out) ends the
watchdog too. SIGTERM/SIGINT are passed to the worker, which flushes and exits; the watchdog then
exits with its code (and removes its state file). The state file (JSON, rewritten atomically) says how many restarts there were,
the worker's pid and its last exit code: ``supervisor.status()`` reads it for ``lakehouse status``.

:func:`supervised` wraps a worker's ``ServiceSpec`` so that it runs under a watchdog.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import tenacity

from infrastructure.services import ServiceSpec

log = logging.getLogger("watchdog")
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0
STOP_TIMEOUT_S = 60.0  # a worker asked to stop gets this long to flush before SIGKILL


def state_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.watchdog.json"


def supervised(spec: ServiceSpec, run_dir: Path) -> ServiceSpec:
    """The same worker, started by a watchdog that restarts it after a crash."""
    argv = (sys.executable, "-m", "infrastructure.watchdog", spec.name, str(state_file(run_dir, spec.name)),
            "--", *spec.argv)  # fmt: skip
    return replace(spec, argv=argv)


def read_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class Watchdog:
    def __init__(self, name: str, argv: list[str], state: Path) -> None:
        self.name, self.argv, self.state = name, argv, state
        self.stopping = threading.Event()
        self.child: subprocess.Popen | None = None
        self.restarts = 0
        self.last_exit: int | None = None

    def _write(self) -> None:
        data = {
            "name": self.name, "pid": os.getpid(), "child_pid": self.child.pid if self.child else None,
            "restarts": self.restarts, "last_exit": self.last_exit, "updated": time.time(),
        }  # fmt: skip
        self.state.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.state)

    def stop(self, *_: object) -> None:
        self.stopping.set()
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)

    def run_once(self) -> int:
        self.child = subprocess.Popen(self.argv)
        self._write()
        asked_at: float | None = None
        while True:
            try:
                code = self.child.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if self.stopping.is_set():
                    asked_at = asked_at or time.monotonic()
                    if time.monotonic() - asked_at > STOP_TIMEOUT_S:
                        self.child.kill()  # it had its chance to flush; what it held stays in Kafka
        self.last_exit = code
        self._write()
        return code

    def run(self) -> int:
        def restart_line(state: tenacity.RetryCallState) -> None:
            self.restarts += 1
            self._write()
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s exited with code %s; restart %d in %.1f s", self.name, self.last_exit,
                        self.restarts, wait)  # fmt: skip

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda code: code != 0 and not self.stopping.is_set()),
            wait=tenacity.wait_exponential(multiplier=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S),
            stop=lambda _state: self.stopping.is_set(),
            sleep=lambda seconds: self.stopping.wait(seconds),
            before_sleep=restart_line,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else 1,
        )
        return retrying(self.run_once)


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.watchdog", description=__doc__)
    parser.add_argument("name")
    parser.add_argument("state_file", type=Path)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    ns = parser.parse_args(args)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not command:
        parser.error("no command to supervise")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dog = Watchdog(ns.name, command, ns.state_file)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, dog.stop)
    code = dog.run()
    if dog.stopping.is_set():  # stopped as asked: nothing for `lakehouse status` to report
        ns.state_file.unlink(missing_ok=True)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
