#!/usr/bin/env bash
# make demo-cdc: the near-real-time path on a local 4-shard fleet with live traffic
# (docs/cdc.md). Everything runs on its own directory and ports, apart from `make demo`
# and `make cdc-up`:
#
#   1. a copy of shards.yaml pointing at var/cdc-demo (lake, warehouse, Kafka, Connect)
#   2. four PostgreSQL shards (127.0.0.1:$DEMO_PG_PORT+i), Kafka + Connect + Debezium
#   3. shardctl connectors secrets/plan/apply: one connector per shard
#   4. traffic for $DURATION at $RATE new orders/s, `tokenize cdc` following, and a loop
#      of `load --all` + dbt (the CDC DAG's dbt step) that samples, for every order
#      version that becomes visible in fact_orders, the time since its commit
#   5. drain, then fact_orders = the shards' live orders (count, total_cents, key checksum)
#   6. shardctl connectors status, then everything is stopped (KEEP=1 leaves it running)
#
# Needs make deps-cdc deps-dbt deps-apt build (the make target runs them).
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD
DEMO=${DEMO_DIR:-$ROOT/var/cdc-demo}
DURATION=${DURATION:-2m}
RATE=${RATE:-40}
KEEP=${KEEP:-0}
DEMO_PG_PORT=${DEMO_PG_PORT:-55600}
export KAFKA_PORT=${DEMO_KAFKA_PORT:-19292} KAFKA_CONTROLLER_PORT=${DEMO_CONTROLLER_PORT:-19293} CONNECT_PORT=${DEMO_CONNECT_PORT:-18283}
export CDC_DIR=$DEMO/stack CDC_HEAP=${CDC_HEAP:-512m}
export PATH="$ROOT/var/bin:$PATH" DBT_SEND_ANONYMOUS_USAGE_STATS=false
PY=$ROOT/var/venv/dbt/bin/python
DBT=$ROOT/var/venv/dbt/bin/dbt
START=$(date +%s)

section() { printf '\n== %s ==\n' "$*"; }
follow_pid= traffic_pid=
cleanup() {
  [ -n "$follow_pid" ] && kill "$follow_pid" 2>/dev/null && wait "$follow_pid" 2>/dev/null
  [ -n "$traffic_pid" ] && kill "$traffic_pid" 2>/dev/null && wait "$traffic_pid" 2>/dev/null
  if [ "$KEEP" != 1 ]; then
    bash "$ROOT/test/harness/cdc/stack.sh" down >/dev/null 2>&1 || true
    shardctl fleet down --dir "$DEMO/fleet" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# -----------------------------------------------------------------------------
section "1. Registry: shards.yaml with the demo's lake, warehouse, Kafka and Connect"
bash "$ROOT/test/harness/cdc/stack.sh" down >/dev/null 2>&1 || true
shardctl fleet down --purge --dir "$DEMO/fleet" >/dev/null 2>&1 || true
rm -rf "$DEMO" && mkdir -p "$DEMO"
export SHARDFLOW_REGISTRY=$DEMO/shards.yaml SHARDFLOW_ENV=local
sed -e "s|path: var/lake|path: $DEMO/lake|" \
    -e "s|path: var/warehouse.duckdb|path: $DEMO/warehouse.duckdb|" \
    -e "s|127.0.0.1:19092|127.0.0.1:$KAFKA_PORT|" \
    -e "s|http://127.0.0.1:18083|http://127.0.0.1:$CONNECT_PORT|" \
    "$ROOT/shards.yaml" >"$SHARDFLOW_REGISTRY"
shardctl validate
export SHARDFLOW_TOKEN_KEY=${SHARDFLOW_TOKEN_KEY:-demo-cdc-token-key-0123456789abcdef0123}

# -----------------------------------------------------------------------------
section "2. Four shards, Kafka (KRaft) + Kafka Connect + Debezium"
shardctl fleet up --dir "$DEMO/fleet" --base-port "$DEMO_PG_PORT"
set -a
# shellcheck disable=SC1091 # written by fleet up
. "$DEMO/fleet/fleet.env"
set +a
bash "$ROOT/test/harness/cdc/stack.sh" up

# -----------------------------------------------------------------------------
section "3. Connectors from shards.yaml: secrets, plan, apply"
shardctl connectors secrets --dir "$CDC_DIR/connect/secrets"
shardctl connectors plan
shardctl connectors apply

# -----------------------------------------------------------------------------
section "4. Live traffic ($DURATION at $RATE orders/s), tokenize cdc following, load + dbt in a loop"
export SHARDFLOW_DUCKDB_PATH=$DEMO/warehouse.duckdb
mkdir -p "$DEMO/dbt-seeds"
shardctl gen-seeds --dir "$DEMO/dbt-seeds" >/dev/null
export SHARDFLOW_DBT_SEEDS=../var/cdc-demo/dbt-seeds
[ "$DEMO" = "$ROOT/var/cdc-demo" ] || { echo "DEMO_DIR must be var/cdc-demo (dbt seeds path)" >&2; exit 2; }
microbatch() {
  load --all >"$DEMO/load.out" 2>"$DEMO/load.log"
  (cd "$ROOT/dbt" && "$DBT" build --exclude path:models/marts/finance --profiles-dir . --target-path "$DEMO/dbt-target" \
    --log-path "$DEMO/dbt-logs" --vars "{code_version: demo-cdc}" >"$DEMO/dbt.out" 2>&1) ||
    { tail -30 "$DEMO/dbt.out"; exit 1; }
  "$PY" "$ROOT/test/harness/cdc/freshness.py" sample "$DEMO/warehouse.duckdb" "$DEMO/freshness.json"
}
echo "  warm-up (not measured): $(microbatch) on the empty warehouse"
shardctl traffic --duration "$DURATION" --rate "$RATE" --dir "$DEMO/fleet" >"$DEMO/traffic.out" 2>&1 &
traffic_pid=$!
tokenize cdc --flush-interval 5s --instance-id demo-cdc >"$DEMO/tokenize.out" 2>"$DEMO/tokenize.log" &
follow_pid=$!
i=0
while kill -0 "$traffic_pid" 2>/dev/null; do
  i=$((i + 1))
  began=$(date +%s)
  line=$(microbatch)
  printf '  micro-batch %2d: %s (%ss)\n' "$i" "$line" "$(($(date +%s) - began))"
done
wait "$traffic_pid"; traffic_pid=
sed 's/^/  /' "$DEMO/traffic.out"

# -----------------------------------------------------------------------------
section "5. Drain: stop following, a bounded run, load, dbt; fact_orders against the shards"
kill -TERM "$follow_pid"; wait "$follow_pid" || { echo "tokenize cdc (follow) failed:"; tail -20 "$DEMO/tokenize.log"; exit 1; }
follow_pid=
tokenize cdc --bounded --instance-id demo-cdc 2>>"$DEMO/tokenize.log" | tail -1
line=$(microbatch)
echo "  last micro-batch: $line"
"$PY" "$ROOT/test/harness/cdc/freshness.py" report "$DEMO/freshness.json" || echo "  (above the target)"
# per shard: live orders, sum of total_cents, row checksum (landing.ChecksumSQL, Postgres)
sums=()
for v in $(compgen -A variable | grep -E '^SHARDFLOW_S[0-9]+_ADMIN_DSN$' | sort); do
  sums+=("$(psql "${!v}" -XAt -c "SELECT count(*), coalesce(sum(total_cents), 0),
    coalesce(sum(('x' || lpad(substr(md5(CAST(order_id AS text) || '|' || CAST(row_version AS text)), 1, 15), 16, '0'))::bit(64)::bigint), 0)::text
    FROM orders WHERE NOT deleted")")
done
"$PY" "$ROOT/test/harness/cdc/freshness.py" check "$DEMO/warehouse.duckdb" "${sums[@]}"

# -----------------------------------------------------------------------------
section "6. Monitoring: shardctl connectors status"
shardctl connectors status --group shardflow-tokenize-cdc || true

section "done in $(( $(date +%s) - START ))s"
if [ "$KEEP" = 1 ]; then
  echo "Kept running: fleet $DEMO/fleet (fleet.env), Kafka 127.0.0.1:$KAFKA_PORT, Connect http://127.0.0.1:$CONNECT_PORT."
  echo "Stop: CDC_DIR=$CDC_DIR bash test/harness/cdc/stack.sh down; shardctl fleet down --dir $DEMO/fleet"
fi
