#!/usr/bin/env bash
# The shardflow demo: `make demo` (SHARDS=4) or `SHARDS=16 make demo`.
#
# Each section is one stage of the pipeline and prints what it did. Areas add their
# stage as a new numbered section, in pipeline order, using the variables set in
# section 1 (ROOT, SHARDS, SHARDFLOW_REGISTRY) and the fleet's DSNs from section 2.
# The demo starts from a fresh fleet every run, so its numbers are reproducible.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARDS=${SHARDS:-4}
ORDERS=${ORDERS:-4000}
SEED=${SEED:-1}
export PATH="$ROOT/var/bin:$PATH"
DEMO_START=$(date +%s)

section() { printf '\n== %s ==\n' "$*"; }

# -----------------------------------------------------------------------------
section "1. Registry: $SHARDS shards"
# shards.yaml describes 4 shards. For another count, generate an even-split registry
# (same tables and settings, no moves) and point every command at it.
if [ "$SHARDS" = 4 ]; then
  export SHARDFLOW_REGISTRY="$ROOT/shards.yaml"
else
  export SHARDFLOW_REGISTRY="$ROOT/var/shards-$SHARDS.yaml"
  shardctl init --shards "$SHARDS" --from "$ROOT/shards.yaml" --out "$SHARDFLOW_REGISTRY"
fi
shardctl validate

# -----------------------------------------------------------------------------
section "2. Local shard fleet: one PostgreSQL cluster per shard"
shardctl fleet down --purge >/dev/null
shardctl fleet up
# shellcheck disable=SC1091 # written by fleet up: SHARDFLOW_<ID>_{EXTRACT,REPLICATION,ADMIN}_DSN
source "$ROOT/var/fleet/fleet.env"

# -----------------------------------------------------------------------------
section "3. Order traffic: $ORDERS new orders, seed $SEED, routed by bucket ownership"
shardctl traffic --orders "$ORDERS" --seed "$SEED"
echo
shardctl fleet status

# -----------------------------------------------------------------------------
section "done in $(( $(date +%s) - DEMO_START ))s"
echo "The fleet keeps running: 'make fleet-status', 'make down'; DSNs in var/fleet/fleet.env."
