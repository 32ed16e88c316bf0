#!/usr/bin/env bash
# The local CDC stack: one Apache Kafka process in KRaft mode (broker + controller) and
# one Kafka Connect distributed worker with the Debezium PostgreSQL plugin, on loopback.
# Jars come from test/harness/cdc/pom.xml (`make deps-cdc`); nothing is downloaded here.
#
#   stack.sh up      format the storage if new, start Kafka and Connect, wait until the
#                    worker lists the Debezium plugin (safe to re-run)
#   stack.sh down    stop the worker, then the broker (data kept)
#   stack.sh status  one line per process
#   stack.sh kill-connect | start-connect   (tests: kill -9 the worker, start it again)
#
# Settings (environment):
#   CDC_DIR              state, logs and pid files      (default var/cdc/stack)
#   CDC_LIB              jars of the broker and worker   (default var/cdc/lib)
#   CDC_PLUGINS          Connect plugin.path             (default var/cdc/plugins)
#   KAFKA_PORT           broker listener                 (default 19092)
#   KAFKA_CONTROLLER_PORT  controller listener           (default 19093)
#   CONNECT_PORT         Connect REST listener           (default 18083)
#   CDC_HEAP             -Xmx of each JVM                (default 512m)
#
# Connector secrets: the worker resolves ${file:secrets/<shard>.properties:<key>} and the
# tokenize transform's ${dir:tokenizer:<key file>} relative to its working directory,
# $CDC_DIR/connect (`shardctl connectors secrets` writes both; docs/cdc.md, "Secrets").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
CDC_DIR="${CDC_DIR:-$root/var/cdc/stack}"
CDC_LIB="${CDC_LIB:-$root/var/cdc/lib}"
CDC_PLUGINS="${CDC_PLUGINS:-$root/var/cdc/plugins}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
CONNECT_PORT="${CONNECT_PORT:-18083}"
CDC_HEAP="${CDC_HEAP:-512m}"
JAVA="${JAVA:-java}"

kdir="$CDC_DIR/kafka"
cdir="$CDC_DIR/connect"
log4j="$CDC_DIR/log4j2.properties"

die() { echo "cdc: $*" >&2; exit 1; }

need_jars() {
  [[ -f "$(ls "$CDC_LIB"/kafka_2.13-*.jar 2>/dev/null | head -1)" ]] || die "no Kafka jars in $CDC_LIB (run \`make deps-cdc\`)"
  [[ -d "$CDC_PLUGINS/debezium-connector-postgres" ]] || die "no Debezium plugin in $CDC_PLUGINS (run \`make deps-cdc\`)"
  [[ -f "$CDC_PLUGINS/shardflow-tokenize/shardflow-tokenize.jar" ]] || die "no tokenize transform in $CDC_PLUGINS (run \`make deps-cdc\`)"
}

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_config() {
  mkdir -p "$kdir/data" "$cdir/secrets" "$cdir/tokenizer"
  chmod 700 "$cdir/secrets" "$cdir/tokenizer"
  cat >"$log4j" <<EOF
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.kafkaorg.name = org.apache.kafka
logger.kafkaorg.level = WARN
logger.connect.name = org.apache.kafka.connect
logger.connect.level = INFO
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
logger.debezium.name = io.debezium
logger.debezium.level = INFO
EOF
  cat >"$kdir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$kdir/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=168
log.segment.bytes=67108864
EOF
  cat >"$cdir/worker.properties" <<EOF
bootstrap.servers=127.0.0.1:$KAFKA_PORT
group.id=shardflow-connect
listeners=http://127.0.0.1:$CONNECT_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$CONNECT_PORT
plugin.path=$CDC_PLUGINS
plugin.discovery=service_load
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
config.storage.topic=_shardflow_connect_configs
offset.storage.topic=_shardflow_connect_offsets
status.storage.topic=_shardflow_connect_status
config.storage.replication.factor=1
offset.storage.replication.factor=1
offset.storage.partitions=5
status.storage.replication.factor=1
offset.flush.interval.ms=1000
scheduled.rebalance.max.delay.ms=5000
topic.creation.enable=true
# source tasks' producers: fewer, larger requests (docs/cdc.md, "Measured here")
producer.linger.ms=5
producer.batch.size=1048576
producer.compression.type=lz4
# Connect's own default is acks=all, no idempotence, one request in flight; idempotence
# keeps a partition's order with up to 5 in flight and drops a retried batch's duplicate
producer.acks=all
producer.enable.idempotence=true
producer.max.in.flight.requests.per.connection=5
# secrets never sit in connector configs: they name keys the worker resolves
config.providers=file,env,dir
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
# the tokenize transform's key: dir provider, tokenizer/<tokenizer.key.k8s_key> (docs/pci.md)
config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider
EOF
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.5
  done
}

kafka_started() { grep -q "Kafka Server started" "$kdir/kafka.log"; }
plugins_listed() { curl -sf "http://127.0.0.1:$CONNECT_PORT/connector-plugins" | grep -q PostgresConnector; }

start_kafka() {
  if alive "$kdir/kafka.pid"; then return 0; fi
  if [[ ! -f "$kdir/data/meta.properties" ]]; then
    local id
    id="$("$JAVA" -cp "$CDC_LIB/*" -Dlog4j2.configurationFile="$log4j" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
    "$JAVA" -cp "$CDC_LIB/*" -Dlog4j2.configurationFile="$log4j" kafka.tools.StorageTool format \
      -t "$id" -c "$kdir/server.properties" --ignore-formatted >"$kdir/format.log" 2>&1 ||
      { cat "$kdir/format.log" >&2; die "kafka storage format failed"; }
  fi
  : >"$kdir/kafka.log"
  (cd "$kdir" && exec setsid "$JAVA" -Xms128m -Xmx"$CDC_HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$log4j" -cp "$CDC_LIB/*" kafka.Kafka server.properties \
    >>"$kdir/kafka.log" 2>&1 </dev/null & echo $! >"$kdir/kafka.pid")
  wait_for 90 "kafka" kafka_started || { tail -30 "$kdir/kafka.log" >&2; die "kafka did not start on 127.0.0.1:$KAFKA_PORT (log: $kdir/kafka.log)"; }
}

start_connect() {
  if alive "$cdir/connect.pid"; then return 0; fi
  : >"$cdir/connect.log"
  (cd "$cdir" && exec setsid "$JAVA" -Xms128m -Xmx"$CDC_HEAP" -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$log4j" -cp "$CDC_LIB/*" \
    org.apache.kafka.connect.cli.ConnectDistributed worker.properties \
    >>"$cdir/connect.log" 2>&1 </dev/null & echo $! >"$cdir/connect.pid")
  wait_for 180 "connect" plugins_listed || { tail -30 "$cdir/connect.log" >&2; die "connect worker did not list the Debezium plugin on 127.0.0.1:$CONNECT_PORT (log: $cdir/connect.log)"; }
}

stop_pid() { # stop_pid PIDFILE NAME
  local f=$1 name=$2
  if ! alive "$f"; then rm -f "$f"; return 0; fi
  local pid; pid="$(cat "$f")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }; sleep 0.5; done
  echo "cdc: $name (pid $pid) did not stop in 30s, killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

case "${1:-}" in
  up)
    need_jars
    write_config
    start_kafka
    start_connect
    echo "cdc: kafka 127.0.0.1:$KAFKA_PORT, connect http://127.0.0.1:$CONNECT_PORT (dir $CDC_DIR)"
    ;;
  start-connect)
    need_jars
    start_connect
    ;;
  kill-connect)
    if alive "$cdir/connect.pid"; then kill -9 "$(cat "$cdir/connect.pid")"; fi
    rm -f "$cdir/connect.pid"
    ;;
  down)
    stop_pid "$cdir/connect.pid" connect
    stop_pid "$kdir/kafka.pid" kafka
    echo "cdc: stopped (data kept in $CDC_DIR)"
    ;;
  status)
    for p in "$kdir/kafka.pid:kafka 127.0.0.1:$KAFKA_PORT" "$cdir/connect.pid:connect http://127.0.0.1:$CONNECT_PORT"; do
      f=${p%%:*}; n=${p#*:}
      if alive "$f"; then echo "$n: running (pid $(cat "$f"))"; else echo "$n: stopped"; fi
    done
    ;;
  *)
    echo "usage: $0 up|down|status|kill-connect|start-connect" >&2
    exit 2
    ;;
esac
