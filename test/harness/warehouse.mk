# Warehouse and load: DuckDB embedded (nothing to install) and fakesnow's HTTP server as a
# Snowflake stand-in for gosnowflake (py/fakesnow/uv.lock, venv var/venv/fakesnow).
# The Go tests start their own fakesnow on a free port; test-go runs them (they skip
# outside CI, and fail under CI, when the venv is missing). docs/warehouse.md.
DEPS_TARGETS += deps-fakesnow
BENCH_TARGETS += bench-load bench-warehouse

FAKESNOW_VENV := $(VAR)/venv/fakesnow
FAKESNOW_PORT ?= 17080

.PHONY: deps-fakesnow test-warehouse fakesnow-up fakesnow-down load-all bench-load bench-warehouse
deps-fakesnow: deps-uv ## install fakesnow[server] into var/venv/fakesnow from py/fakesnow/uv.lock
	@UV_PROJECT_ENVIRONMENT=$(FAKESNOW_VENV) $(UV) sync --frozen --quiet --project py/fakesnow

test-warehouse: deps-fakesnow deps-go ## warehouse contract on DuckDB and fakesnow, golden Snowflake SQL, load task (kill/re-run)
	CI=$${CI:-true} go test -count=1 ./internal/warehouse/... ./internal/load/... ./tasks/load/...

fakesnow-up: deps-fakesnow ## run fakesnow's Snowflake HTTP server on 127.0.0.1:17080 (for manual gosnowflake runs)
	@mkdir -p $(VAR)/fakesnow
	@if [ -f $(VAR)/fakesnow/pid ] && kill -0 $$(cat $(VAR)/fakesnow/pid) 2>/dev/null; then echo "fakesnow already up (pid $$(cat $(VAR)/fakesnow/pid))"; exit 0; fi; \
	nohup $(FAKESNOW_VENV)/bin/fakesnow -s --host 127.0.0.1 -p $(FAKESNOW_PORT) -d $(VAR)/fakesnow/db > $(VAR)/fakesnow/server.log 2>&1 & echo $$! > $(VAR)/fakesnow/pid; \
	echo "fakesnow on 127.0.0.1:$(FAKESNOW_PORT) (pid $$(cat $(VAR)/fakesnow/pid)); DSN fake:snow@127.0.0.1:$(FAKESNOW_PORT)/ANALYTICS/RAW?account=fakesnow&protocol=http"

fakesnow-down: ## stop the fakesnow server started by fakesnow-up
	@bash test/harness/stop-warehouse.sh

load-all: build ## load every landed file not yet loaded into the local warehouse (var/warehouse.duckdb)
	$(BIN)/load --all

bench-load: deps-go ## load rows/s into DuckDB (sha256 + transaction + verification) beside a bare INSERT ... read_parquet of the same 500k-row file; records load_rows_per_s in test/bench/rates.json
	go test -run '^$$' -bench . -benchtime 3x ./internal/load/ | go run ./test/bench/rates -rates $(ROOT)/test/bench/rates.json -bench 'make bench-load' \
	  -set 'load_rows_per_s=BenchmarkLoadWindow:rows/s,ref=BenchmarkReadParquetInsert:rows/s,note=one 500k-row window into DuckDB (sha256, one transaction, verification); reference: a bare INSERT ... read_parquet of the same file'

bench-warehouse: deps-dbt build ## the CDC micro-batch's dbt build and the hourly dq run on the same change set over raw history 1x and 10x (ratio, goal <= 1.2)
	$(DBT_VENV)/bin/python test/bench/warehouse/bench.py --dir $(VAR)/bench/warehouse
