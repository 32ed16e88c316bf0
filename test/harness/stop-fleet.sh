#!/usr/bin/env bash
# Stops the local shard fleet (var/fleet) without needing shardctl: every cluster with a
# postmaster.pid is stopped with pg_ctl as the postgres user. Data is kept. Idempotent.
set -uo pipefail
cd "$(dirname "$0")/../.."
dir=${FLEET_DIR:-var/fleet}
[ -f "$dir/fleet.json" ] || exit 0
bin=$(sed -n 's/.*"bin_dir": *"\([^"]*\)".*/\1/p' "$dir/fleet.json")
[ -x "$bin/pg_ctl" ] || bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")
for data in "$dir"/*/data; do
  [ -f "$data/postmaster.pid" ] || continue
  shard=$(basename "$(dirname "$data")")
  if runuser -u postgres -- "$bin/pg_ctl" stop -D "$(realpath "$data")" -m fast -w -t 60 -s; then
    echo "stopped shard $shard"
  else
    echo "could not stop shard $shard (see $dir/$shard/postgres.log)" >&2
  fi
done
exit 0
