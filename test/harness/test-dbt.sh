#!/usr/bin/env bash
# test-dbt: build a fixture warehouse in exactly the raw contract shape, run the dbt
# project on it twice (full, then incremental after late changes), then after loads that
# commit out of stamp order (phases 3, 4), check the marts,
# prove finance runs reproducible (verify, replay, and a tampered run that must fail),
# build it for Snowflake on fakesnow (the marts must equal DuckDB's) and parse it for
# Snowflake. Needs var/venv/dbt and var/venv/fakesnow (make deps-dbt deps-fakesnow).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=$ROOT/var/venv/dbt
WORK=$ROOT/var/dbt-fixture
DB=$WORK/warehouse.duckdb
export SHARDFLOW_DUCKDB_PATH=$DB SHARDFLOW_DBT_TARGET=local DBT_SEND_ANONYMOUS_USAGE_STATS=false
unset SHARDFLOW_DBT_SEEDS
passed=0

dbt() { (cd "$ROOT/dbt" && "$VENV/bin/dbt" "$@" --profiles-dir . --target-path "$ROOT/var/dbt/target-fixture" --log-path "$WORK/logs"); }
step() { echo; echo "== $*"; }
ok() { passed=$((passed + 1)); }
summary() { grep -E "Done\. PASS=" "$WORK/last.log" | tail -1; }
build() {
  if ! dbt build "$@" >"$WORK/last.log" 2>&1; then
    grep -E "ERROR|FAIL|Error|error" -A6 "$WORK/last.log" | head -60; summary; return 1
  fi
  grep -E "Finished running" "$WORK/last.log"; summary; ok
}

rm -rf "$WORK" && mkdir -p "$WORK"
trap 'echo "dbt: $passed passed, 1 failed"' ERR

step "fixture phase 1: raw tables (contract shape) + _load_history"
"$VENV/bin/python" "$ROOT/test/fixtures/dbt/build_fixture.py" --db "$DB" --phase 1

step "dbt build (full: seeds, models, unit tests, data tests), finance run fixture-run-1"
build --vars '{code_version: fixture-1, finance_run_id: fixture-run-1}'
"$VENV/bin/python" "$ROOT/test/fixtures/dbt/check_fixture.py" --db "$DB" --phase 1; ok

step "fixture phase 2: late changes to published days, a delete by the new owner, a new order"
"$VENV/bin/python" "$ROOT/test/fixtures/dbt/build_fixture.py" --db "$DB" --phase 2

step "dbt build (incremental merge into fact_orders), finance run fixture-run-2"
build --vars '{code_version: fixture-2, finance_run_id: fixture-run-2}'
"$VENV/bin/python" "$ROOT/test/fixtures/dbt/check_fixture.py" --db "$DB" --phase 2; ok

step "fact_orders summary (what make demo prints)"
dbt run-operation fact_orders_summary | grep -E "fact_orders:"; ok

step "shardctl finance verify both runs (run 1 after phase 2 was loaded: pinned inputs must still give its numbers)"
finance() { (cd "$ROOT" && SHARDFLOW_DBT_BIN="$VENV/bin/dbt" "$ROOT/var/bin/shardctl" finance "$@"); }
finance verify --run fixture-run-1; ok
finance verify --run fixture-run-2; ok

step "shardctl finance replay: run 1 recomputed on its recorded inputs as fixture-run-3"
finance replay --run fixture-run-1 --as fixture-run-3; ok
"$VENV/bin/python" "$ROOT/test/fixtures/dbt/check_fixture.py" --db "$DB" --replay fixture-run-3 --of fixture-run-1; ok

step "a tampered run must fail verification"
"$VENV/bin/python" - "$DB" <<'PY'
import sys, duckdb
c = duckdb.connect(sys.argv[1])
c.execute("update finance.fct_finance_daily_versions set net_cents = net_cents + 1 where run_id = 'fixture-run-1' and currency = 'USD'")
PY
rc=0; finance verify --run fixture-run-1 >"$WORK/tampered.log" 2>&1 || rc=$?
if [ "$rc" != 3 ]; then
  echo "FAIL: shardctl finance verify of a tampered run exited $rc, want 3"; cat "$WORK/tampered.log"; exit 1
fi
grep -o "verify finance run fixture-run-1.*NOT reproducible.*" "$WORK/tampered.log" | head -1; ok

step "fixture phase 3 (stamped 03:00), dbt build of fact_orders; then phase 4 (stamped 02:30, committed after that build), dbt build again"
for phase in 3 4; do
  "$VENV/bin/python" "$ROOT/test/fixtures/dbt/build_fixture.py" --db "$DB" --phase $phase
  build --select +fact_orders +audit_order_lineage
  "$VENV/bin/python" "$ROOT/test/fixtures/dbt/check_fixture.py" --db "$DB" --phase $phase; ok
done

step "the project for Snowflake (dbt-snowflake) built on fakesnow from the fixture's raw tables; marts = DuckDB's"
"$VENV/bin/python" "$ROOT/test/fixtures/dbt/on_fakesnow.py" --db "$DB" --fakesnow "$ROOT/var/venv/fakesnow/bin/fakesnow" \
  --dbt "$VENV/bin/dbt" --work "$WORK/fakesnow"; ok

step "loads committed out of stamp order, interleaved with incremental builds; then = a from-scratch build"
"$VENV/bin/python" "$ROOT/test/fixtures/dbt/interleave.py" --db "$DB" --dbt "$VENV/bin/dbt"; ok

step "dbt docs generate (the analysts' site) on the fixture"
dbt docs generate | grep -E "Catalog written|Building catalog" | tail -1
test -s "$ROOT/var/dbt/target-fixture/index.html" && test -s "$ROOT/var/dbt/target-fixture/catalog.json"; ok

step "dbt parse --target snowflake (no connection, no credentials)"
env -u SNOWFLAKE_ACCOUNT -u SNOWFLAKE_USER -u DBT_ENV_SECRET_SNOWFLAKE_PRIVATE_KEY \
  "$VENV/bin/dbt" parse --project-dir "$ROOT/dbt" --profiles-dir "$ROOT/dbt" --target snowflake --no-partial-parse \
  --target-path "$ROOT/var/dbt/target-snowflake" --log-path "$WORK/logs" | grep -E "Registered adapter"; ok

trap - ERR
echo
echo "dbt: $passed passed, 0 failed"
