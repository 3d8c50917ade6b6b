#!/usr/bin/env bash
# Installs the Debian packages of one group, only those missing:
#   runtime  what the embedded stack runs (make setup, make demo)
#   test     what only the tests use (make setup-test, make test)
# Needs root (or sudo) and apt-get; elsewhere it says what to install and carries on.
set -euo pipefail

group="${1:-runtime}"
# command -> Debian package, and why
declare -A NEEDED=()
case "$group" in
  runtime)
    # the embedded stack's metrics (scrape + alert rules) and the batch jobs' Pushgateway
    NEEDED[prometheus]=prometheus
    NEEDED[prometheus-pushgateway]=prometheus-pushgateway
    ;;
  test)
    # promtool checks the Prometheus configs and unit-tests the alert rules
    NEEDED[promtool]=prometheus
    # an independent Kafka client the tests read the topics with
    NEEDED[kcat]=kcat
    # the dashboard page's headless-browser test
    NEEDED[chromium]=chromium
    # tsc checks the Grafana dashboards against @grafana/schema (monitoring/grafana/schema-check)
    NEEDED[npm]=npm
    # validates docker-compose.yml offline (`docker-compose config`); needs no Docker engine
    NEEDED[docker-compose]=docker-compose
    ;;
  *)
    echo "install-system-packages: unknown group '$group' (runtime | test)" >&2
    exit 2
    ;;
esac

missing=()
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-packages ($group): all present (${!NEEDED[*]})"
  exit 0
fi
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
echo "install-system-packages ($group): apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# apt's own progress lines (one per package fetched and unpacked) show what a slow step is doing
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
