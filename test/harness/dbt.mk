# dbt: the project in dbt/, run from the uv venv var/venv/dbt (py/dbt/uv.lock pins
# dbt-core, dbt-duckdb, dbt-snowflake and duckdb). docs/dbt.md.
DEPS_TARGETS += deps-dbt

DBT_VENV  := $(VAR)/venv/dbt
DBT       := $(DBT_VENV)/bin/dbt
DOCS_PORT ?= 18580
# The warehouse `make docs` documents: the one the pipeline loads (environments.local),
# or the test fixture when the pipeline has not run here.
DOCS_DB   ?= $(VAR)/warehouse.duckdb

.PHONY: deps-dbt test-dbt lint-seeds docs dbt-build
deps-dbt: deps-uv ## install dbt (core, duckdb, snowflake) into var/venv/dbt from py/dbt/uv.lock
	@UV_PROJECT_ENVIRONMENT=$(DBT_VENV) $(UV) sync --frozen --quiet --project py/dbt

test-dbt: deps-dbt deps-fakesnow build lint-seeds ## dbt build on a fixture warehouse (unit + data tests, incremental, finance verify), built for Snowflake on fakesnow, parsed for Snowflake
	bash test/harness/test-dbt.sh

lint-seeds: build ## dbt/seeds up to date with shards.yaml
	$(BIN)/shardctl gen-seeds --check --dir dbt/seeds

dbt-build: deps-dbt ## dbt build on the local warehouse (var/warehouse.duckdb); VARS='{code_version: ...}'
	cd dbt && SHARDFLOW_DUCKDB_PATH=$(VAR)/warehouse.duckdb $(DBT) build --profiles-dir . --target-path $(VAR)/dbt/target --log-path $(VAR)/dbt/logs \
	  --vars "$${VARS:-{code_version: $$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}}"

docs: deps-dbt ## generate the dbt docs site and serve it on 127.0.0.1:18580 (Ctrl-C stops it)
	@db=$(DOCS_DB); if [ ! -f "$$db" ]; then \
	  echo "$$db not found: documenting the test fixture warehouse (make test-dbt builds it)"; \
	  db=$(VAR)/dbt-fixture/warehouse.duckdb; [ -f "$$db" ] || bash test/harness/test-dbt.sh >/dev/null; fi; \
	cd dbt && SHARDFLOW_DUCKDB_PATH=$$db $(DBT) docs generate --profiles-dir . --target-path $(VAR)/dbt/docs --log-path $(VAR)/dbt/logs && \
	exec $(DBT) docs serve --profiles-dir . --target-path $(VAR)/dbt/docs --log-path $(VAR)/dbt/logs --host 127.0.0.1 --port $(DOCS_PORT) --no-browser
