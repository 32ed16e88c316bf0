# Monitoring (docs/monitoring.md): the alert rules and the dashboard generated from
# shards.yaml (shardctl gen-monitoring) into monitoring/, checked by promtool and amtool
# from Debian's packages; a local Prometheus + Alertmanager + Pushgateway and the
# exporter (`make monitoring`). The integration test firing the rules in a real
# Prometheus is in internal/metrics (test-go-integration).
MON_PROMETHEUS_PORT   ?= 19090
MON_ALERTMANAGER_PORT ?= 19095
MON_PUSHGATEWAY_PORT  ?= 19091

.PHONY: lint-monitoring test-monitoring-rules gen-monitoring monitoring monitoring-down
lint-monitoring: deps-apt build ## monitoring/ up to date with shards.yaml; promtool check rules; amtool check-config
	$(BIN)/shardctl gen-monitoring --check
	promtool check rules monitoring/prometheus/shardflow.rules.yml
	amtool check-config monitoring/alertmanager/alertmanager.yml

test-monitoring-rules: deps-apt ## promtool unit tests: a case per generated alert (monitoring/prometheus/shardflow.rules.test.yml)
	cd monitoring/prometheus && promtool test rules shardflow.rules.test.yml

gen-monitoring: build ## render monitoring/ (alert rules, dashboard) from shards.yaml (commit the result with the edit)
	$(BIN)/shardctl gen-monitoring

monitoring: deps-apt build ## Prometheus http://127.0.0.1:19090 + Alertmanager :19095 + Pushgateway :19091 + the exporter on the local fleet (make up first)
	@PROMETHEUS_PORT=$(MON_PROMETHEUS_PORT) ALERTMANAGER_PORT=$(MON_ALERTMANAGER_PORT) PUSHGATEWAY_PORT=$(MON_PUSHGATEWAY_PORT) \
	  EXPORTER_START=1 bash test/harness/monitoring/stack.sh up
	@echo "tasks push when SHARDFLOW_PUSHGATEWAY_URL=http://127.0.0.1:$(MON_PUSHGATEWAY_PORT) is set; the dashboard to import into Grafana: monitoring/grafana/shardflow.dashboard.json"

monitoring-down: ## stop what make monitoring started
	@bash test/harness/stop-monitoring.sh
