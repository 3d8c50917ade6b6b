#!/usr/bin/env bash
# Installs the Debian packages the embedded stack and tests use, only those missing.
# Needs root (or sudo) and apt-get; elsewhere it says what to install and carries on.
set -euo pipefail

# command -> Debian package
declare -A NEEDED=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [kcat]=kcat
  # the embedded stack's Pushgateway (batch job metrics) and the dashboard's browser test
  [prometheus-pushgateway]=prometheus-pushgateway
  [chromium]=chromium
  # tsc checks the Grafana dashboards against @grafana/schema (monitoring/grafana/schema-check)
  [npm]=npm
  # validates docker-compose.yml offline (`docker-compose config`) in tests; needs no Docker engine
  [docker-compose]=docker-compose
)

missing=()
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-packages: no apt-get here; please install: ${missing[*]}" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-system-packages: not root and no sudo; please install: ${missing[*]}" >&2
    exit 0
  fi
fi
echo "install-system-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
