"""The Pushgateway's basic auth, for both stacks: its ``--web.config.file`` and Prometheus's password file.

``lakehouse up`` writes them for the embedded stack; the compose stack's ``pushgateway-init`` job
runs ``python -m infrastructure.pushgateway FOLDER`` with the password from ``.env``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from infrastructure.services import write_private
from infrastructure.settings import MetricsSettings, load_settings


def web_config(username: str, password: str) -> str:
    """The gateway's web config (pure but for the salt): one basic-auth user, bcrypt-hashed."""
    import bcrypt  # only the writers of this file need it

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    return f"# generated from settings\nbasic_auth_users:\n  {json.dumps(username)}: {json.dumps(hashed)}\n"


def write_auth_files(metrics: MetricsSettings, web_config_file: Path, password_file: Path) -> None:
    """The gateway's web config and the password file Prometheus scrapes it with (both 0600)."""
    username, password = metrics.pushgateway_auth()
    write_private(web_config_file, web_config(username, password))
    write_private(password_file, password)


def main(argv: list[str] | None = None) -> None:
    folder = Path((argv or sys.argv[1:] or ["."])[0])
    write_auth_files(load_settings().metrics, folder / "web.yml", folder / "password")
    # the gateway and Prometheus read these as their own (non-root) users in the compose stack
    for name in ("web.yml", "password"):
        (folder / name).chmod(0o444)
    print(f"pushgateway auth files written to {folder}")


if __name__ == "__main__":
    main()
