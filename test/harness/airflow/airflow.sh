#!/usr/bin/env bash
# make airflow / make airflow-down: a local Airflow 3 (api-server, scheduler with the
# LocalExecutor, dag-processor, triggerer) on 127.0.0.1:$AIRFLOW_PORT, AIRFLOW_HOME
# var/airflow, SQLite metadata DB, dags_folder dags/$AIRFLOW_ENV (the local-target DAGs
# rendered from shards.yaml). Tasks get the local fleet's DSNs from var/fleet/fleet.env
# (make up) and the tokenizer key from SHARDFLOW_TOKEN_KEY (a throwaway key is written to
# var/airflow/token.key when unset). After start it checks, through the API the UI's
# graph view reads, that the hourly DAG shows one task group per shard.
#   airflow.sh up | down | check
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
VENV=${AIRFLOW_VENV:-$ROOT/var/venv/airflow}
ENVNAME=${AIRFLOW_ENV:-local}
PORT=${AIRFLOW_PORT:-18080}
HOME_DIR=$ROOT/var/airflow
export AIRFLOW_HOME=$HOME_DIR
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags/$ENVNAME
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=shardflow:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$HOME_DIR/passwords.json
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$PORT/execution/
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$HOME_DIR/airflow.db
export AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$PORT AIRFLOW__API__WORKERS=1
export AIRFLOW__API__BASE_URL=http://127.0.0.1:$PORT
export AIRFLOW__LOGGING__BASE_LOG_FOLDER=$HOME_DIR/logs
export SHARDFLOW_REGISTRY=${SHARDFLOW_REGISTRY:-$ROOT/shards.yaml}
export SHARDFLOW_BIN=$ROOT/var/bin
export SHARDFLOW_CODE_VERSION=${SHARDFLOW_CODE_VERSION:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}
SERVICES="api-server scheduler dag-processor triggerer"

running() { [ -f "$HOME_DIR/$1.pid" ] && kill -0 "$(cat "$HOME_DIR/$1.pid")" 2>/dev/null; }

token() {
  curl -fsS -X POST "http://127.0.0.1:$PORT/auth/token" -H 'Content-Type: application/json' \
    -d "{\"username\":\"shardflow\",\"password\":$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["shardflow"]))' "$HOME_DIR/passwords.json")}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

check() {
  # The graph view draws /ui/structure/structure_data: its top-level nodes must hold one
  # task group per shard of the registry (plus the fleet-wide tasks).
  local dag tok
  dag=$(awk '/^fleet:/{print $2}' "$SHARDFLOW_REGISTRY")__hourly
  tok=$(token)
  for _ in $(seq 1 120); do
    if curl -fsS -H "Authorization: Bearer $tok" "http://127.0.0.1:$PORT/ui/structure/structure_data?dag_id=$dag" >"$HOME_DIR/structure.json" 2>/dev/null; then break; fi
    sleep 2
  done
  "$VENV/bin/python" - "$HOME_DIR/structure.json" "$SHARDFLOW_REGISTRY" "$dag" <<'PY'
import json, sys, yaml
nodes = json.load(open(sys.argv[1]))["nodes"]
groups = sorted(n["id"] for n in nodes if n.get("children"))
shards = sorted(s["id"] for s in yaml.safe_load(open(sys.argv[2]))["shards"] if s["state"] != "retired")
if groups != shards:
    sys.exit(f"UI graph of {sys.argv[3]}: task groups {groups}, want one per shard {shards}")
print(f"UI graph of {sys.argv[3]}: one task group per shard: {', '.join(groups)}")
PY
}

case "${1:-up}" in
up)
  mkdir -p "$HOME_DIR/logs"
  [ -f "$HOME_DIR/passwords.json" ] || python3 -c 'import json,secrets; print(json.dumps({"shardflow": secrets.token_urlsafe(16)}))' >"$HOME_DIR/passwords.json"
  chmod 600 "$HOME_DIR/passwords.json"
  if [ -f "$ROOT/var/fleet/fleet.env" ]; then set -a; . "$ROOT/var/fleet/fleet.env"; set +a
  else echo "note: var/fleet/fleet.env not found: tasks will fail until the fleet runs (make up)"; fi
  if [ -z "${SHARDFLOW_TOKEN_KEY:-}" ]; then
    [ -f "$HOME_DIR/token.key" ] || python3 -c 'import secrets; print(secrets.token_hex(32))' >"$HOME_DIR/token.key"
    chmod 600 "$HOME_DIR/token.key"
    SHARDFLOW_TOKEN_KEY=$(cat "$HOME_DIR/token.key"); export SHARDFLOW_TOKEN_KEY
  fi
  "$VENV/bin/airflow" db migrate >"$HOME_DIR/migrate.log" 2>&1 || { tail -20 "$HOME_DIR/migrate.log"; exit 1; }
  "$VENV/bin/airflow" pools import "$AIRFLOW__CORE__DAGS_FOLDER/pools.json" >/dev/null
  for s in $SERVICES; do
    if running "$s"; then echo "airflow $s already running (pid $(cat "$HOME_DIR/$s.pid"))"; continue; fi
    setsid nohup "$VENV/bin/airflow" "$s" >"$HOME_DIR/$s.log" 2>&1 &
    echo $! >"$HOME_DIR/$s.pid"
  done
  for _ in $(seq 1 90); do curl -fsS "http://127.0.0.1:$PORT/api/v2/monitor/health" >/dev/null 2>&1 && break; sleep 2; done
  check
  echo "Airflow on http://127.0.0.1:$PORT (user shardflow, password in $HOME_DIR/passwords.json), DAGs from dags/$ENVNAME; make airflow-down stops it"
  ;;
check) check ;;
down)
  for s in $SERVICES; do
    if running "$s"; then kill -TERM -- "-$(cat "$HOME_DIR/$s.pid")" 2>/dev/null || kill -TERM "$(cat "$HOME_DIR/$s.pid")"; fi
  done
  for s in $SERVICES; do
    for _ in $(seq 1 30); do running "$s" || break; sleep 1; done
    if running "$s"; then kill -KILL -- "-$(cat "$HOME_DIR/$s.pid")" 2>/dev/null || true; fi
    rm -f "$HOME_DIR/$s.pid"
  done
  echo "airflow stopped"
  ;;
*) echo "usage: airflow.sh up|down|check" >&2; exit 2 ;;
esac
