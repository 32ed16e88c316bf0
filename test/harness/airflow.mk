# Orchestration (docs/orchestration.md): Airflow 3 from py/airflow/uv.lock in
# var/venv/airflow, the DAGs rendered from shards.yaml into dags/<environment>/
# (shardctl gen-dags), pytest checks of both targets, and the Go tests that run the
# local-target DAGs in a real Airflow over a real fleet and CDC stack (build tag
# airflowe2e). make test runs them in its stages: lint-dags, test-dags (unit),
# test-airflow-e2e (e2e, last).
DEPS_TARGETS += deps-airflow

AIRFLOW_VENV := $(VAR)/venv/airflow
AIRFLOW_ENV  ?= local
AIRFLOW_PORT ?= 18080

.PHONY: deps-airflow test-airflow lint-dags test-dags test-airflow-e2e airflow airflow-down gen-dags
deps-airflow: deps-uv ## install Airflow 3 (+ cncf-kubernetes provider, pytest, ruff) into var/venv/airflow from py/airflow/uv.lock
	@UV_PROJECT_ENVIRONMENT=$(AIRFLOW_VENV) $(UV) sync --frozen --quiet --project py/airflow

gen-dags: build ## render dags/ from shards.yaml (commit the result with the shards.yaml edit)
	$(BIN)/shardctl gen-dags

test-airflow: lint-dags test-dags test-airflow-e2e ## dags/ up to date and ruff-clean; DagBag + graphs + KPO pod specs (pytest); every local DAG run on a real Airflow, fleet and CDC stack

lint-dags: deps-airflow build ## dags/ up to date with shards.yaml, the DAGs and their tests ruff-clean
	$(BIN)/shardctl gen-dags --check
	$(AIRFLOW_VENV)/bin/ruff check --config dags/ruff.toml dags py/airflow/tests
	$(AIRFLOW_VENV)/bin/ruff format --check --config dags/ruff.toml dags py/airflow/tests

test-dags: deps-airflow deps-apt ## DagBag without import errors, task graphs, KPO pod specs, the local target's exit codes (pytest)
	$(AIRFLOW_VENV)/bin/pytest -q -p no:cacheprovider py/airflow/tests

test-airflow-e2e: deps-airflow deps-dbt deps-cdc deps-apt build ## every local DAG run on a real Airflow, fleet and CDC stack (about 10 minutes)
	CI=$${CI:-true} go test -count=1 -p 1 -timeout 40m -tags airflowe2e -run 'Airflow' ./internal/airflow/... ./internal/shardctl/

airflow: deps-airflow deps-dbt build ## start Airflow on http://127.0.0.1:18080 with the dags/$(AIRFLOW_ENV) DAGs (user shardflow, password in var/airflow/passwords.json)
	@AIRFLOW_VENV=$(AIRFLOW_VENV) AIRFLOW_ENV=$(AIRFLOW_ENV) AIRFLOW_PORT=$(AIRFLOW_PORT) bash test/harness/airflow/airflow.sh up

airflow-down: ## stop the Airflow started by make airflow
	@bash test/harness/stop-airflow.sh
