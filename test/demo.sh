#!/usr/bin/env bash
# The shardflow demo: `make demo` (SHARDS=4) or `SHARDS=16 make demo`.
#
# The batch path end to end on the embedded default: a local fleet of real PostgreSQL
# shards with order traffic → extract-window per shard, table and closed window (PCI
# columns tokenized before anything lands) → landed Parquet + manifests in var/lake →
# load into DuckDB (var/warehouse.duckdb) → dq → dbt build → fact_orders, reconciled
# with the shards themselves. Each section prints what it did. The demo starts from a
# fresh fleet, lake and warehouse every run, so its numbers are reproducible; it exits
# non-zero when any step fails or fact_orders differs from the shards.
#
# Time is compressed: the demo's registry is shards.yaml with 1-minute windows and a
# 5-second safety lag (production: 1h and 5m), so the windows of its traffic close
# about a minute after the traffic stops. Everything else is shards.yaml's.
#
# DEMO_VAR (default var) is where the demo keeps its fleet, landing zone, warehouse, dbt
# target and logs, and BASE_PORT (default 25400) where its first shard listens: `make
# bench-scale` runs it on 64 shards in var/bench/scale/e2e on ports of its own, so it
# leaves a `make demo` fleet and warehouse alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARDS=${SHARDS:-4}
ORDERS=${ORDERS:-4000}
SEED=${SEED:-1}
BASE_PORT=${BASE_PORT:-25400}
VARD=$(realpath -m "${DEMO_VAR:-$ROOT/var}")
DEFAULT_VAR=$(realpath -m "$ROOT/var")
DEMO=$VARD/demo
FLEET=$VARD/fleet
LAKE=$VARD/lake
WH=$VARD/warehouse.duckdb
rel() { realpath -m --relative-to="$ROOT" "$1"; }
export PATH="$ROOT/var/bin:$PATH"
export SHARDFLOW_ENV=local DBT_SEND_ANONYMOUS_USAGE_STATS=false
DEMO_START=$(date +%s)

section() { printf '\n== %s ==\n' "$*"; }
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%MZ; }

# -----------------------------------------------------------------------------
section "1. Registry: $SHARDS shards, 1-minute windows"
mkdir -p "$DEMO"
export SHARDFLOW_REGISTRY="$DEMO/shards.yaml"
if [ "$SHARDS" = 4 ]; then
  shardctl init --from "$ROOT/shards.yaml" --window 1m --safety-lag 5s --out "$SHARDFLOW_REGISTRY"
else
  shardctl init --from "$ROOT/shards.yaml" --shards "$SHARDS" --window 1m --safety-lag 5s --out "$SHARDFLOW_REGISTRY"
fi
if [ "$VARD" != "$DEFAULT_VAR" ]; then
  # the registry's local environment lands and loads under DEMO_VAR
  sed -i -e "s#path: var/lake#path: $LAKE#" -e "s#path: var/warehouse.duckdb#path: $WH#" "$SHARDFLOW_REGISTRY"
  grep -q "path: $LAKE" "$SHARDFLOW_REGISTRY" && grep -q "path: $WH" "$SHARDFLOW_REGISTRY" \
    || { echo "could not point environments.local of $SHARDFLOW_REGISTRY at $VARD"; exit 1; }
fi
shardctl validate
WINDOW=60
SHARD_IDS=$(awk '/^shards:/{f=1;next} /^[a-z]/{f=0} f && /^  - id:/{print $3}' "$SHARDFLOW_REGISTRY")
TABLES=$(awk '/^tables:/{f=1;next} /^[a-z]/{f=0} f && /^  - name:/{print $3}' "$SHARDFLOW_REGISTRY")
# The tokenizer key: a local secret, made once (production: a Kubernetes secret).
if [ ! -s "$ROOT/var/secrets/tokenizer.key" ]; then
  mkdir -p "$ROOT/var/secrets" && chmod 700 "$ROOT/var/secrets"
  (umask 077; head -c 36 /dev/urandom | base64 >"$ROOT/var/secrets/tokenizer.key")
fi
SHARDFLOW_TOKEN_KEY=$(cat "$ROOT/var/secrets/tokenizer.key")
export SHARDFLOW_TOKEN_KEY
echo "tokenizer key k1 from var/secrets/tokenizer.key (made once, mode 0600)"

# -----------------------------------------------------------------------------
section "2. Local shard fleet: one PostgreSQL cluster per shard"
shardctl fleet down --purge --dir "$FLEET" >/dev/null
shardctl fleet up --dir "$FLEET" --base-port "$BASE_PORT"
# shellcheck disable=SC1091 # written by fleet up: SHARDFLOW_<ID>_{EXTRACT,REPLICATION,ADMIN}_DSN
source "$FLEET/fleet.env"
rm -rf "$LAKE" "$WH" "$WH.wal"
echo "landing zone $(rel "$LAKE") and warehouse $(rel "$WH") emptied"

# -----------------------------------------------------------------------------
section "3. Order traffic: $ORDERS new orders, seed $SEED, routed by bucket ownership"
T0=$(date -u +%s)
shardctl traffic --orders "$ORDERS" --seed "$SEED"
T1=$(date -u +%s)
FIRST=$(( T0 / WINDOW * WINDOW ))
LAST=$(( T1 / WINDOW * WINDOW ))         # the last window holding traffic starts here
END=$(( LAST + WINDOW ))
NWIN=$(( (END - FIRST) / WINDOW ))
echo
shardctl fleet status --dir "$FLEET"

# -----------------------------------------------------------------------------
section "4. Extract: $NWIN windows × $(echo "$TABLES" | wc -w) tables × $SHARDS shards, $(utc $FIRST) .. $(utc $END)"
wait_s=$(( END + 5 + 1 - $(date -u +%s) ))
if [ "$wait_s" -gt 0 ]; then
  echo "waiting ${wait_s}s until the last window is closed (end $(utc $END) + safety lag 5s)"
  sleep "$wait_s"
fi
mkdir -p "$DEMO/logs"
extract_shard() {   # one shard's windows, in order; a window not closed yet is retried
  local s=$1 t w rc tries
  for t in $TABLES; do
    for (( w = FIRST; w < END; w += WINDOW )); do
      tries=0
      while :; do
        rc=0
        extract-window --shard "$s" --table "$t" --window "$(utc "$w")" \
          >>"$DEMO/logs/extract-$s.out" 2>>"$DEMO/logs/extract-$s.log" || rc=$?
        if [ "$rc" = 75 ] && [ $(( tries += 1 )) -lt 5 ]; then sleep 3; continue; fi
        [ "$rc" = 0 ] || { echo "shard $s: extract-window $t $(utc "$w") exited $rc ($(rel "$DEMO")/logs/extract-$s.log)"; return "$rc"; }
        break
      done
    done
  done
}
rm -f "$DEMO"/logs/extract-*
pids=()
for s in $SHARD_IDS; do extract_shard "$s" & pids+=($!); done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
for s in $SHARD_IDS; do
  line="shard $s:"
  for t in $TABLES; do
    rows=$(awk -v t="$t" '$1=="landed" && index($2, "/"t"/") {sub(":", "", $3); n += $3} END {print n+0}' "$DEMO/logs/extract-$s.out" 2>/dev/null || echo 0)
    line+=" $t $rows"
  done
  echo "$line rows landed"
done
[ "$failed" = 0 ] || exit 1
echo "landed $(find "$LAKE" -name '*.parquet' | wc -l) Parquet files + manifests under $(rel "$LAKE")/landing"

# -----------------------------------------------------------------------------
section "5. Load: every landed file into DuckDB (file-level idempotent)"
load --all 2>"$DEMO/logs/load.log"
echo "again (a re-run adds nothing):"
load --all 2>>"$DEMO/logs/load.log" | awk '{print "  " $0}'

# -----------------------------------------------------------------------------
section "6. Data quality: completeness per shard and window, duplicates, ownership, PCI, freshness"
rc=0
dq --from "$(utc $FIRST)" --to "$(utc $END)" --cross-shard --pci-files >"$DEMO/logs/dq.out" 2>"$DEMO/logs/dq.log" || rc=$?
# The table: completeness per shard and table, duplicates, PCI scans, anything not
# PASS, and the verdict.
awk 'NR == 1 || $2 ~ /^(completeness|duplicate_keys|pci_leak)/ || ($1 != "PASS" && $1 != "dq") || /^dq run/' "$DEMO/logs/dq.out" | cut -c1-160
echo "(every check: $(rel "$DEMO")/logs/dq.out; they are also in the warehouse's dq.dq_results)"
[ "$rc" = 0 ] || { echo "dq exited $rc ($(rel "$DEMO")/logs/dq.log)"; exit "$rc"; }
# Free text (orders.note, policy redact): card numbers customers typed land as tokens.
"$ROOT/var/venv/dbt/bin/python" - "$WH" <<'PY'
import sys, duckdb
n, t = duckdb.connect(sys.argv[1], read_only=True).execute(
    "select count(*), count(*) filter (where note like '%tok\\_%' escape '\\') from raw.orders where note is not null").fetchone()
print(f"order notes: {n} landed, {t} with card numbers customers typed, replaced by their tokens (docs/pci.md); pci_leak above: none left")
PY

# -----------------------------------------------------------------------------
section "7. dbt build: staging → ownership filter → latest version → fact_orders, finance"
shardctl gen-seeds --dir "$DEMO/dbt-seeds" >/dev/null
DBT_RUN="demo-$(date -u +%Y%m%dT%H%M%SZ)"
SEEDS_REL=$(realpath -m --relative-to="$ROOT/dbt" "$DEMO/dbt-seeds")   # dbt's seed-paths: relative to dbt/
dbt() {
  (cd "$ROOT/dbt" && SHARDFLOW_DUCKDB_PATH="$WH" SHARDFLOW_DBT_SEEDS="$SEEDS_REL" \
    "$ROOT/var/venv/dbt/bin/dbt" "$@" --profiles-dir . --target-path "$VARD/dbt/target" --log-path "$DEMO/logs")
}
code_version=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! dbt build --vars "{code_version: $code_version, finance_run_id: $DBT_RUN}" >"$DEMO/logs/dbt-build.out" 2>&1; then
  grep -E "ERROR|FAIL" -A4 "$DEMO/logs/dbt-build.out" | head -40
  echo "dbt build failed ($(rel "$DEMO")/logs/dbt-build.out)"; exit 1
fi
grep -E "Done\. PASS=" "$DEMO/logs/dbt-build.out" | sed 's/^[0-9:]* *//'
dbt run-operation fact_orders_summary 2>&1 | grep -E "fact_orders:" | sed 's/^[0-9:]* *//'
dbt run-operation verify_finance_run --args "{run_id: $DBT_RUN}" 2>&1 | grep -E "verify finance" | sed 's/^[0-9:]* *//'

# -----------------------------------------------------------------------------
section "8. Reconcile: fact_orders against the shards themselves"
# Straight from every shard: its live (not deleted) orders. The demo's traffic is
# routed by ownership and no move is in flight, so their union is what fact_orders
# must hold: the same count and the same sum of total_cents.
src_n=0 src_sum=0
for s in $SHARD_IDS; do
  var="SHARDFLOW_$(echo "$s" | tr '[:lower:]' '[:upper:]')_ADMIN_DSN"
  read -r n sum < <(psql "${!var}" -XAtF' ' -c "SELECT count(*), coalesce(sum(total_cents), 0) FROM orders WHERE NOT deleted")
  printf '  %-6s %8d orders  total_cents %14d\n' "$s" "$n" "$sum"
  src_n=$(( src_n + n )) src_sum=$(( src_sum + sum ))
done
read -r wh_n wh_sum < <("$ROOT/var/venv/dbt/bin/python" - "$WH" <<'PY'
import sys, duckdb
n, s = duckdb.connect(sys.argv[1], read_only=True).execute(
    "select count(*), coalesce(sum(total_cents), 0) from analytics.fact_orders").fetchone()
print(n, s)
PY
)
printf '  %-6s %8d orders  total_cents %14d\n' "shards" "$src_n" "$src_sum"
printf '  %-6s %8d orders  total_cents %14d\n' "fact" "$wh_n" "$wh_sum"
if [ "$src_n" != "$wh_n" ] || [ "$src_sum" != "$wh_sum" ]; then
  echo "MISMATCH: fact_orders differs from the union of the shards"; exit 1
fi
echo "fact_orders = union of the $SHARDS shards: $wh_n orders, total_cents $wh_sum"

# -----------------------------------------------------------------------------
section "9. Backfill: shard s00's windows extracted again"
# A backfill of windows whose rows did not change lands the same bytes (nothing of the
# run is in the data, docs/decisions/0019): load skips every file and the finance run
# still verifies. Then one order of s00's first window changes on the shard (it moves
# to a later window): that window extracted again is a real change, and verify names it.
finance() { SHARDFLOW_DUCKDB_PATH="$WH" SHARDFLOW_DBT_SEEDS="$SEEDS_REL" \
  SHARDFLOW_DBT_BIN="$ROOT/var/venv/dbt/bin/dbt" shardctl finance "$@" --project "$ROOT/dbt"; }
s00_files() { find "$LAKE/landing" -path '*/source=batch/shard=s00/*' -name '*.parquet' -exec sha256sum {} + | sort; }
before=$(s00_files)
extract_shard s00 || exit 1
after=$(s00_files)
[ "$before" = "$after" ] || { echo "MISMATCH: s00's windows extracted again are not byte-identical"; diff <(echo "$before") <(echo "$after") | head; exit 1; }
echo "$(echo "$after" | wc -l) files of s00 extracted again: byte-identical"
out=$(load --all --shard s00 2>>"$DEMO/logs/load.log")
echo "  $out"
case "$out" in *" 0 loaded (0 replaced)"*) ;; *) echo "MISMATCH: load did not skip the unchanged files"; exit 1 ;; esac
finance verify --run "$DBT_RUN" 2>>"$DEMO/logs/finance.log" | sed 's/^/  /'
var="SHARDFLOW_S00_ADMIN_DSN"
read -r changed at < <(psql "${!var}" -XAtF' ' -c "SELECT order_id, floor(extract(epoch FROM updated_at) / $WINDOW)::bigint * $WINDOW FROM orders WHERE NOT deleted ORDER BY updated_at, order_id LIMIT 1")
psql "${!var}" -XAq -c "UPDATE orders SET status = 'cancelled' WHERE order_id = '$changed'"
echo "order $changed cancelled on s00: it leaves window $(utc "$at"); that window extracted again:"
extract-window --shard s00 --table orders --window "$(utc "$at")" >>"$DEMO/logs/extract-s00.out" 2>>"$DEMO/logs/extract-s00.log"
echo "  $(load --all --shard s00 2>>"$DEMO/logs/load.log")"
rc=0; finance verify --run "$DBT_RUN" >"$DEMO/logs/finance-changed.out" 2>&1 || rc=$?
sed 's/^/  /' "$DEMO/logs/finance-changed.out" | grep -E "verify finance|input changed" | head -3
if [ "$rc" != 3 ] || ! grep -q "s00" "$DEMO/logs/finance-changed.out"; then
  echo "MISMATCH: finance verify after a changed window exited $rc, want 3 naming s00"; exit 1
fi
echo "the finance run no longer verifies, and says which input changed (publish a new run)"

# -----------------------------------------------------------------------------
section "done in $(( $(date +%s) - DEMO_START ))s"
if [ "$VARD" = "$DEFAULT_VAR" ]; then
  echo "The fleet keeps running: 'make fleet-status', 'make down'; DSNs in var/fleet/fleet.env."
  echo "Landed files: var/lake; warehouse: var/warehouse.duckdb ('make docs' documents it); logs: var/demo/logs."
else
  echo "The fleet keeps running: 'shardctl fleet status --dir $(rel "$FLEET")', 'shardctl fleet down --dir $(rel "$FLEET")'."
  echo "Landed files: $(rel "$LAKE"); warehouse: $(rel "$WH"); logs: $(rel "$DEMO")/logs."
fi
