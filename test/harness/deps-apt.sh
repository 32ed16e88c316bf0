#!/usr/bin/env bash
# Installs Debian's PostgreSQL server when its binaries are missing. Idempotent.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  exit 0
fi
echo "installing postgresql from Debian ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql postgresql-contrib >/dev/null
# Debian's package starts a default cluster; shardflow runs its own clusters.
if command -v pg_ctlcluster >/dev/null; then pg_ctlcluster --force 15 main stop 2>/dev/null || true; fi
