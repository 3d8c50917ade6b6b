#!/bin/sh
# One-shot: create the warehouse bucket if it is missing (idempotent), so Nessie's object-store
# health check and the first table write find it.
set -eu
master="${WEED_MASTER:-seaweedfs:9333}"
bucket="${BUCKET:?set LAKEHOUSE_S3__WAREHOUSE_BUCKET}"
if echo "s3.bucket.list" | weed shell -master="$master" 2>/dev/null | awk '{print $1}' | grep -qx "$bucket"; then
  echo "bucket $bucket exists"
  exit 0
fi
echo "s3.bucket.create -name $bucket" | weed shell -master="$master"
echo "s3.bucket.list" | weed shell -master="$master" 2>/dev/null | awk '{print $1}' | grep -qx "$bucket"
echo "bucket $bucket created"
