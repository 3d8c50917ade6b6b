#!/bin/sh
# SeaweedFS for the compose stack: master, volume, filer and S3 in one process (the production
# shape of the embedded stack's `weed mini`). S3 requires the key pair from .env: the identities
# file written here has one admin identity, so anonymous and wrong-key requests are refused (same
# identity as infrastructure.services.write_s3_identities). It lives in /tmp, not on the data volume.
# Beside S3, -disableHttp turns off the master's and filer's HTTP APIs (S3 and `weed shell` use gRPC)
# and the WEED_JWT_* keys from the environment make the volume server require signed requests.
# The compose stack's catalog is Nessie, so SeaweedFS's own Iceberg REST and Lance listeners are off.
set -eu
: "${S3_ACCESS_KEY:?set LAKEHOUSE_S3__ACCESS_KEY in .env}"
: "${S3_SECRET_KEY:?set LAKEHOUSE_S3__SECRET_KEY in .env}"
data_dir="${WEED_DATA_DIR:-/data}"
config="${WEED_S3_CONFIG:-/tmp/s3.json}"

umask 077
cat > "$config" <<JSON
{"identities": [{"name": "lakehouse",
  "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON

mkdir -p "$data_dir"
exec weed server -dir="$data_dir" -ip="${WEED_IP:-seaweedfs}" -ip.bind="${WEED_BIND:-0.0.0.0}" \
  -master.port="${WEED_MASTER_PORT:-9333}" -volume.port="${WEED_VOLUME_PORT:-8080}" \
  -filer -filer.port="${WEED_FILER_PORT:-8888}" \
  -s3 -s3.port="${WEED_S3_PORT:-8333}" -s3.config="$config" -s3.port.iceberg=0 -s3.port.lance=0 \
  -master.volumeSizeLimitMB=1024 -volume.max=0 -metricsPort="${WEED_METRICS_PORT:-9327}" -disableHttp
