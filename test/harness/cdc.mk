# Near-real-time path (docs/cdc.md): Kafka (KRaft) + Kafka Connect + the Debezium
# PostgreSQL plugin from Maven Central (test/harness/cdc/pom.xml, resolved into var/cdc),
# connectors rendered from shards.yaml (shardctl connectors), and `tokenize cdc`, the
# Go consumer that lands Parquet files by offset range. The Connect worker also loads
# shardflow's tokenize transform (docker/connect/tokenize, built here with mvn), so card
# data is tokenized before any byte reaches Kafka (docs/pci.md).
# Ports of the default stack: broker 19092, controller 19093, Connect REST 18083.
# Tests start their own stacks on free ports.
DEPS_TARGETS  += deps-cdc
BENCH_TARGETS += bench-cdc

CDC_DIR  := $(VAR)/cdc
CDC_JARS := $(CDC_DIR)/lib/.resolved
SMT_SRC  := docker/connect/tokenize
SMT_JAR  := $(CDC_DIR)/plugins/shardflow-tokenize/shardflow-tokenize.jar
MVN_SMT  := mvn -B -q -f $(SMT_SRC)/pom.xml -Dmaven.repo.local=$(CDC_DIR)/m2 -Dbuild.dir=$(CDC_DIR)/tokenize

.PHONY: deps-cdc cdc-up cdc-down cdc-status test-cdc bench-cdc demo-cdc test-java
deps-cdc: $(CDC_JARS) $(SMT_JAR) ## resolve Kafka, Connect and the Debezium plugin from Maven Central into var/cdc; build the tokenize transform into its plugin.path
$(CDC_JARS): test/harness/cdc/pom.xml
	@mkdir -p $(CDC_DIR)
	@# the plugin is unpacked over its directory: a version change would leave the old
	@# release's jars beside the new ones on the worker's plugin.path (and its marker skip the unpack)
	rm -rf $(CDC_DIR)/plugins/debezium-connector-postgres $(CDC_DIR)/target/dependency-maven-plugin-markers
	mvn -B -q -f test/harness/cdc/pom.xml -Dmaven.repo.local=$(CDC_DIR)/m2 -Dcdc.dir=$(CDC_DIR) package
	@touch $@

$(SMT_JAR): $(SMT_SRC)/pom.xml $(shell find $(SMT_SRC)/src/main -type f)
	$(MVN_SMT) -DskipTests package
	@mkdir -p $(dir $@)
	cp $(CDC_DIR)/tokenize/shardflow-tokenize-1.jar $@.tmp && mv $@.tmp $@ # a running worker keeps the jar it opened

test-java: deps-cdc ## the tokenize transform's Java tests, the cross-language vectors (test/vectors/tokenize.json) among them
	$(MVN_SMT) test

cdc-up: deps-cdc ## start Kafka (127.0.0.1:19092) and a Connect worker (http://127.0.0.1:18083), wait until ready
	@bash test/harness/cdc/stack.sh up

cdc-down: ## stop the Connect worker and Kafka started by cdc-up (data kept)
	@bash test/harness/stop-cdc.sh

cdc-status: ## connectors, slots and consumer lag of the local stack (shardctl connectors status)
	@bash test/harness/cdc/stack.sh status
	@set -a; [ -f $(VAR)/fleet/fleet.env ] && . $(VAR)/fleet/fleet.env; set +a; $(BIN)/shardctl connectors status

test-cdc: deps-cdc deps-apt deps-dbt build ## CDC end to end: 4 shards → Debezium → Kafka → tokenize cdc → load → dbt fact_orders, kill -9 mid-stream, a shard added; then a split and a move under traffic with batch and CDC running (reconciled per bucket, dq with the move audit, finance pinned before the split); then a column rolled out to the shards one at a time under traffic (no window refused, its values through both paths into fact_orders)
	CI=$${CI:-true} go test -count=1 -timeout 40m -tags cdce2e -run 'E2E' ./internal/cdc/

bench-cdc: deps-cdc deps-apt deps-dbt build ## commit → fact_orders freshness p50/p95/max under sustained writes; events/s Debezium → Kafka → tokenize cdc beside pg_recvlogical
	CI=$${CI:-true} go test -count=1 -timeout 20m -tags cdce2e -run '^$$' -bench '^BenchmarkCDC$$' -benchtime 1x ./internal/cdc/

demo-cdc: deps-cdc deps-apt deps-dbt build ## the near-real-time path on a local 4-shard fleet with live traffic; prints the freshness it measured
	bash test/harness/cdc/demo.sh
