#!/usr/bin/env bash
# The local monitoring stack (docs/monitoring.md): Prometheus with the generated alert
# rules, Alertmanager with monitoring/alertmanager/alertmanager.yml, and a Pushgateway,
# from Debian's packages (`make deps-apt`), on loopback. Prometheus scrapes the
# exporter (`shardctl metrics serve`, started here too when EXPORTER_START=1) and the
# Pushgateway (honor_labels: the tasks' fleet, shard and table labels are kept), and
# sends its alerts to the Alertmanager.
#
#   stack.sh up      write the configuration, start what is not running, wait until ready
#   stack.sh down    stop everything it started (data kept)
#   stack.sh status  one line per process
#
# Settings (environment):
#   MON_DIR              configuration, data, logs, pid files   (default var/monitoring)
#   PROMETHEUS_PORT      Prometheus web and API                  (default 19090)
#   ALERTMANAGER_PORT    Alertmanager web and API                (default 19095)
#   PUSHGATEWAY_PORT     Pushgateway                             (default 19091)
#   EXPORTER_TARGET      host:port Prometheus scrapes /metrics   (default 127.0.0.1:19100)
#   EXPORTER_START       1: start `shardctl metrics serve` on EXPORTER_TARGET with the
#                        fleet's variables (FLEET_ENV, default var/fleet/fleet.env)
#   RULES                alert rules file    (default monitoring/prometheus/shardflow.rules.yml)
#   ALERTMANAGER_CONFIG  (default monitoring/alertmanager/alertmanager.yml)
#   SCRAPE_INTERVAL      scrape and rule evaluation interval     (default 15s)
#   RESEND_DELAY         how often firing alerts are re-sent     (default 1m)
#   SHARDFLOW_REGISTRY   the exporter's shards.yaml              (default ./shards.yaml)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
MON_DIR="${MON_DIR:-$root/var/monitoring}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-19090}"
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-19095}"
PUSHGATEWAY_PORT="${PUSHGATEWAY_PORT:-19091}"
EXPORTER_TARGET="${EXPORTER_TARGET:-127.0.0.1:19100}"
EXPORTER_START="${EXPORTER_START:-0}"
FLEET_ENV="${FLEET_ENV:-$root/var/fleet/fleet.env}"
RULES="${RULES:-$root/monitoring/prometheus/shardflow.rules.yml}"
ALERTMANAGER_CONFIG="${ALERTMANAGER_CONFIG:-$root/monitoring/alertmanager/alertmanager.yml}"
SCRAPE_INTERVAL="${SCRAPE_INTERVAL:-15s}"
RESEND_DELAY="${RESEND_DELAY:-1m}"
SHARDCTL="${SHARDCTL:-$root/var/bin/shardctl}"
export SHARDFLOW_REGISTRY="${SHARDFLOW_REGISTRY:-$root/shards.yaml}"

die() { echo "monitoring: $*" >&2; exit 1; }
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

need_bins() {
  for b in prometheus prometheus-alertmanager prometheus-pushgateway; do
    command -v "$b" >/dev/null || die "$b is not installed (run \`make deps-apt\`)"
  done
  [[ -f "$RULES" ]] || die "no rules file $RULES (run \`shardctl gen-monitoring\`)"
  [[ -f "$ALERTMANAGER_CONFIG" ]] || die "no Alertmanager configuration $ALERTMANAGER_CONFIG"
}

write_config() {
  mkdir -p "$MON_DIR/prometheus/data" "$MON_DIR/alertmanager/data" "$MON_DIR/pushgateway" "$MON_DIR/exporter"
  cp "$RULES" "$MON_DIR/prometheus/shardflow.rules.yml"
  cat >"$MON_DIR/prometheus/prometheus.yml" <<EOF
# written by test/harness/monitoring/stack.sh; docs/monitoring.md shows the production one
global:
  scrape_interval: $SCRAPE_INTERVAL
  evaluation_interval: $SCRAPE_INTERVAL
rule_files:
  - shardflow.rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$ALERTMANAGER_PORT"]
scrape_configs:
  - job_name: shardflow-exporter
    scrape_timeout: $SCRAPE_INTERVAL
    static_configs:
      - targets: ["$EXPORTER_TARGET"]
  - job_name: shardflow-pushgateway
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:$PUSHGATEWAY_PORT"]
EOF
}

wait_for() { # wait_for SECONDS COMMAND...
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.3
  done
}

start() { # start NAME READY_URL COMMAND...
  local name=$1 ready=$2; shift 2
  local d="$MON_DIR/$name"
  if alive "$d/$name.pid"; then return 0; fi
  (cd "$d" && exec setsid "$@" >>"$d/$name.log" 2>&1 </dev/null & echo $! >"$d/$name.pid")
  wait_for 60 curl -sf "$ready" || { tail -20 "$d/$name.log" >&2; die "$name did not become ready at $ready (log: $d/$name.log)"; }
}

stop_pid() { # stop_pid NAME
  local f="$MON_DIR/$1/$1.pid"
  if ! alive "$f"; then rm -f "$f"; return 0; fi
  local pid; pid="$(cat "$f")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

names="exporter prometheus alertmanager pushgateway"
case "${1:-}" in
  up)
    need_bins
    write_config
    start alertmanager "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" prometheus-alertmanager \
      --config.file="$ALERTMANAGER_CONFIG" --storage.path="$MON_DIR/alertmanager/data" \
      --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" --cluster.listen-address=
    start pushgateway "http://127.0.0.1:$PUSHGATEWAY_PORT/-/ready" prometheus-pushgateway \
      --web.listen-address="127.0.0.1:$PUSHGATEWAY_PORT" --persistence.file="$MON_DIR/pushgateway/metrics.db"
    start prometheus "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" prometheus \
      --config.file="$MON_DIR/prometheus/prometheus.yml" --storage.tsdb.path="$MON_DIR/prometheus/data" \
      --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --rules.alert.resend-delay="$RESEND_DELAY"
    if [[ "$EXPORTER_START" == 1 ]]; then
      [[ -x "$SHARDCTL" ]] || die "no $SHARDCTL (run \`make build\`)"
      [[ -f "$FLEET_ENV" ]] || die "no $FLEET_ENV: start the fleet first (\`make up\`)"
      # the fleet's DSNs stay in the exporter's environment, never on its command line
      start exporter "http://$EXPORTER_TARGET/healthz" bash -c \
        'set -a; . "$0"; set +a; exec "$1" metrics serve --listen "$2"' "$FLEET_ENV" "$SHARDCTL" "$EXPORTER_TARGET"
    fi
    echo "monitoring: prometheus http://127.0.0.1:$PROMETHEUS_PORT, alertmanager http://127.0.0.1:$ALERTMANAGER_PORT, pushgateway http://127.0.0.1:$PUSHGATEWAY_PORT, scraping $EXPORTER_TARGET (dir $MON_DIR)"
    ;;
  down)
    for n in $names; do stop_pid "$n"; done
    echo "monitoring: stopped (data kept in $MON_DIR)"
    ;;
  status)
    for n in $names; do
      if alive "$MON_DIR/$n/$n.pid"; then echo "$n: running (pid $(cat "$MON_DIR/$n/$n.pid"))"; else echo "$n: stopped"; fi
    done
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
