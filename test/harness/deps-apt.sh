#!/usr/bin/env bash
# Installs what shardflow needs from Debian when it is missing: the PostgreSQL server,
# and Prometheus, Alertmanager and the Pushgateway (with promtool and amtool) for the
# monitoring stack (docs/monitoring.md). Idempotent: nothing is fetched when all is there.
set -euo pipefail
pkgs=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || pkgs+=(postgresql postgresql-contrib)
command -v prometheus >/dev/null && command -v promtool >/dev/null || pkgs+=(prometheus)
command -v prometheus-alertmanager >/dev/null || pkgs+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null || pkgs+=(prometheus-pushgateway)
if [ ${#pkgs[@]} -eq 0 ]; then
  exit 0
fi
echo "installing ${pkgs[*]} from Debian ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${pkgs[@]}" >/dev/null
# Debian's packages start their default services where an init system runs; shardflow
# runs its own instances (test/harness/monitoring, internal/fleet).
if command -v pg_ctlcluster >/dev/null; then pg_ctlcluster --force 15 main stop 2>/dev/null || true; fi
for s in prometheus prometheus-alertmanager prometheus-pushgateway prometheus-node-exporter; do
  command -v service >/dev/null && service "$s" stop >/dev/null 2>&1 || true
done
