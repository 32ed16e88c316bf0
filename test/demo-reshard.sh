#!/usr/bin/env bash
# `make demo-reshard`: live rebalancing on the embedded default, end to end.
#
# From 4 local shards under continuous order traffic: split s01 (buckets 1536-2047 onto a
# new shard s04), then move buckets 2048-2303 from s02 to s03, each with `shardctl move`
# (copy by logical replication, a fence of well under a second, each shard's marker on
# its own clock, the fence recorded in shards.yaml), while the batch path extracts and
# loads every closed window as the hourly DAG would. Then the moves' cleanups, dq (with
# the move audit), dbt, the per-bucket reconciliation of fact_orders against the shards
# that own each bucket now, and a finance run pinned before the split verified and
# replayed after it. Exits non-zero on any difference.
#
# Time is compressed as in `make demo`: 1-minute windows, a 5-second safety lag.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/var/demo-reshard
RATE=${RATE:-30}
export PATH="$ROOT/var/bin:$PATH"
export SHARDFLOW_ENV=local DBT_SEND_ANONYMOUS_USAGE_STATS=false
DEMO_START=$(date +%s)
WINDOW=60

section() { printf '\n== %s ==\n' "$*"; }
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%MZ; }
elapsed() { echo "+$(( $(date +%s) - DEMO_START ))s"; }

# -----------------------------------------------------------------------------
section "1. Registry: 4 shards, 1-minute windows, batch path (no Kafka)"
[ -d "$DEMO/fleet" ] && shardctl fleet down --dir "$DEMO/fleet" --purge >/dev/null   # a previous run's
rm -rf "$DEMO" && mkdir -p "$DEMO/logs"
export SHARDFLOW_REGISTRY="$DEMO/shards.yaml"
shardctl init --from "$ROOT/shards.yaml" --window 1m --safety-lag 5s --out "$SHARDFLOW_REGISTRY" >/dev/null
# this demo runs the batch path only: without Kafka in its environment, the cleanup's
# CDC gate has nothing to wait for (test-cdc runs moves with CDC following)
sed -i '/^  local:/,/^  [a-z]*:$/{/^    kafka:/d}' "$SHARDFLOW_REGISTRY"
sed -i "s|path: var/lake|path: $DEMO/lake|; s|path: var/warehouse.duckdb|path: $DEMO/warehouse.duckdb|" "$SHARDFLOW_REGISTRY"
# the hourly DAG's first window: this run's first minute (cleanup checks every window
# of the source from here through its marker is loaded)
FIRST=$(( $(date -u +%s) / WINDOW * WINDOW ))
sed -i "s|^  start: .*|  start: $(date -u -d "@$FIRST" +%Y-%m-%dT%H:%M:00Z)|" "$SHARDFLOW_REGISTRY"
shardctl validate
if [ ! -s "$ROOT/var/secrets/tokenizer.key" ]; then
  mkdir -p "$ROOT/var/secrets" && chmod 700 "$ROOT/var/secrets"
  (umask 077; head -c 36 /dev/urandom | base64 >"$ROOT/var/secrets/tokenizer.key")
fi
SHARDFLOW_TOKEN_KEY=$(cat "$ROOT/var/secrets/tokenizer.key")
export SHARDFLOW_TOKEN_KEY
TABLES="orders order_items payments"
shard_ids() { awk '/^shards:/{f=1;next} /^[a-z]/{f=0} f && /^  - id:/{print $3}' "$SHARDFLOW_REGISTRY"; }

# -----------------------------------------------------------------------------
section "2. Local fleet and live traffic"
FLEET="$DEMO/fleet"
shardctl fleet up --dir "$FLEET" | tail -n +1
# shellcheck disable=SC1091 # written by fleet up
source "$FLEET/fleet.env"
# The split's new shard is declared (onboarding) before the traffic starts, so the
# traffic has a writer for it: the application's connection pool knows every shard.
shardctl move plan --from s01 --to s04 --buckets 1536-2047 --new-shard --write | sed 's/^/  /'
shardctl fleet up --dir "$FLEET" >/dev/null
# shellcheck disable=SC1091
source "$FLEET/fleet.env"
shardctl traffic --dir "$FLEET" --duration 200s --rate "$RATE" --seed 3 --writers 2 --customers 4000 >"$DEMO/logs/traffic.out" 2>"$DEMO/logs/traffic.log" &
TRAFFIC=$!
echo "traffic: $RATE new orders/s with status changes, refunds and soft deletes, for 200s (pid $TRAFFIC)"

# -----------------------------------------------------------------------------
# The batch path as the hourly DAG runs it: every closed window of every shard and
# table extracted once (its shard's fence rows judge a pending move), then loaded.
export SHARDFLOW_DBT_SEEDS=../var/demo-reshard/dbt-seeds SHARDFLOW_DBT_BIN="$ROOT/var/venv/dbt/bin/dbt"
dbt_() {
  (cd "$ROOT/dbt" && SHARDFLOW_DUCKDB_PATH="$DEMO/warehouse.duckdb" \
    "$ROOT/var/venv/dbt/bin/dbt" "$@" --profiles-dir . --target-path "$DEMO/dbt-target" --log-path "$DEMO/logs")
}
seeds() { shardctl gen-seeds --dir "$DEMO/dbt-seeds" >/dev/null; }
# DuckDB has one writer: every command that opens the warehouse takes this lock
wh() { ( flock 9; "$@" ) 9>"$DEMO/warehouse.lock"; }
# a window is extracted once (a marker file: the loop runs in a subshell of its own)
mkdir -p "$DEMO/done"
batch_pass() {
  local now s t w rc
  now=$(date -u +%s)
  for s in $(shard_ids); do
    for t in $TABLES; do
      for (( w = FIRST; w + WINDOW + 5 <= now; w += WINDOW )); do
        [ -e "$DEMO/done/$s.$t.$w" ] && continue
        rc=0
        extract-window --shard "$s" --table "$t" --window "$(utc "$w")" >>"$DEMO/logs/extract.out" 2>>"$DEMO/logs/extract.log" || rc=$?
        case $rc in
          0) touch "$DEMO/done/$s.$t.$w" ;;
          75) ;; # not closed yet on this shard: next pass
          *) echo "extract-window $s $t $(utc "$w") exited $rc (logs/extract.log)"; return 1 ;;
        esac
      done
    done
  done
  wh load --all >>"$DEMO/logs/load.out" 2>>"$DEMO/logs/load.log"
}
batch_loop() { while kill -0 "$TRAFFIC" 2>/dev/null; do batch_pass || exit 1; sleep 10; done; }
batch_loop & BATCH=$!


# -----------------------------------------------------------------------------
section "3. $(elapsed) A finance run pinned before anything moves"
sleep $(( FIRST + 2 * WINDOW + 10 - $(date -u +%s) > 0 ? FIRST + 2 * WINDOW + 10 - $(date -u +%s) : 0 ))
seeds
PRE=pre-split
wh dbt_ build --vars "{code_version: demo, finance_run_id: $PRE}" >"$DEMO/logs/dbt-pre.out" 2>&1 || { tail -30 "$DEMO/logs/dbt-pre.out"; exit 1; }
grep -E "Done\. PASS=" "$DEMO/logs/dbt-pre.out" | sed 's/^[0-9:]* */  /'
echo "  finance run $PRE pinned on the loads so far"

run_move() {   # epoch: start, wait for the copy, cut over, verify
  local e=$1
  shardctl move start "$e" | sed 's/^/  /'
  shardctl move cutover "$e" | tee "$DEMO/logs/cutover-$e.out" | sed 's/^/  /'
  shardctl move verify "$e" | tee "$DEMO/logs/verify-$e.out" | sed 's/^/  /'
  seeds   # the fence is in shards.yaml now: regenerate (a PR would carry both)
}

# -----------------------------------------------------------------------------
section "4. $(elapsed) Split: s01's buckets 1536-2047 onto the new shard s04"
run_move 2

# -----------------------------------------------------------------------------
section "5. $(elapsed) Move: buckets 2048-2303 from s02 to s03"
shardctl move plan --from s02 --to s03 --buckets 2048-2303 --write | sed 's/^/  /'
seeds
run_move 3

# -----------------------------------------------------------------------------
section "6. $(elapsed) Traffic ends; the last windows close and land"
wait "$TRAFFIC" || { echo "traffic failed (logs/traffic.log)"; exit 1; }
tail -n 3 "$DEMO/logs/traffic.out" | sed 's/^/  /'
wait "$BATCH" || { echo "the batch loop failed"; exit 1; }
END=$(( ( $(date -u +%s) / WINDOW + 1 ) * WINDOW ))
sleep $(( END + 6 - $(date -u +%s) ))
batch_pass
batch_pass
echo "  $(find "$DEMO/lake" -name '*.parquet' | wc -l) files landed and loaded, windows $(utc $FIRST) .. $(utc $END)"

# -----------------------------------------------------------------------------
section "7. $(elapsed) Cleanup: the moved rows leave their old shards"
for e in 2 3; do wh shardctl move cleanup "$e" --wait 2m | sed 's/^/  /'; done

# -----------------------------------------------------------------------------
section "8. $(elapsed) dq: completeness per shard and window, duplicates, ownership, move audit"
rc=0
wh dq --from "$(utc $FIRST)" --to "$(utc $END)" --cross-shard >"$DEMO/logs/dq.out" 2>"$DEMO/logs/dq.log" || rc=$?
grep -E "move_audit" "$DEMO/logs/dq.out" | cut -c1-220 | sed 's/^/  /'
awk '/^dq run/' "$DEMO/logs/dq.out" | sed 's/^/  /'
[ "$rc" = 0 ] || { awk '$1 != "PASS"' "$DEMO/logs/dq.out" | head -20; echo "dq exited $rc"; exit "$rc"; }

# -----------------------------------------------------------------------------
section "9. $(elapsed) dbt build; finance run $PRE verified and replayed after the split"
seeds
wh dbt_ build --vars "{code_version: demo}" >"$DEMO/logs/dbt.out" 2>&1 || { grep -E "ERROR|FAIL" -A4 "$DEMO/logs/dbt.out" | head -30; exit 1; }
grep -E "Done\. PASS=" "$DEMO/logs/dbt.out" | sed 's/^[0-9:]* */  /'
wh dbt_ run-operation verify_finance_run --args "{run_id: $PRE}" 2>&1 | grep -E "verify finance" | sed 's/^[0-9:]* */  /'
wh shardctl finance replay --run "$PRE" --project "$ROOT/dbt" | sed 's/^/  /' 

# -----------------------------------------------------------------------------
section "10. $(elapsed) Reconcile per bucket: fact_orders against the shard that owns each bucket now"
wh shardctl reconcile

section "done in $(( $(date +%s) - DEMO_START ))s"
echo "fleet: shardctl fleet status --dir $FLEET; shards.yaml with both fences: $SHARDFLOW_REGISTRY; logs: $DEMO/logs"
