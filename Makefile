# shardflow. `make help` lists the targets. Every target installs what it needs;
# nothing is expected on the machine beyond Go, Python 3.11, Java 17 with Maven and apt.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT   := $(CURDIR)
VAR    := $(ROOT)/var
BIN    := $(VAR)/bin
SHARDS ?= 4
export PATH := $(BIN):$(PATH)
export SHARDFLOW_REGISTRY ?= $(ROOT)/shards.yaml

# Each area adds its targets in test/harness/<area>.mk and appends to these lists.
DEPS_TARGETS  :=
BENCH_TARGETS :=
include $(sort $(wildcard test/harness/*.mk))

# `make test` runs four stages in this order (make runs prerequisites left to right),
# each one only after the one before passed, so a broken unit test fails the run within
# minutes rather than after the e2e suites. A banner in the log starts each stage.
#   lint         static checks: go vet, gofmt, ruff, generated files up to date
#   unit         Go packages whose tests start no service; the Java transform's tests (the
#                cross-language vectors); the DAGs' pytest checks
#   integration  Go packages whose tests start real services (PostgreSQL, Kafka + Connect,
#                versitygw, fakesnow); test/harness/go-packages.sh splits ./... in two
#   e2e          the pipeline end to end: the batch demo, dbt on its fixture, CDC, Airflow
TEST_LINT        := lint lint-dags lint-seeds lint-monitoring lint-design-doc
TEST_UNIT        := test-go-unit test-java test-monitoring-rules test-dags
TEST_INTEGRATION := test-go-integration
TEST_E2E         := test-demo test-dbt test-cdc test-airflow-e2e

.PHONY: help deps build test test-lint test-unit test-integration test-e2e demo bench lint clean
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n",$$1,$$2}'

deps: $(DEPS_TARGETS) ## install everything the tests and the demo need

build: deps-go ## build every task binary into var/bin
	@mkdir -p $(BIN)
	go build -o $(BIN)/ ./tasks/...

test: deps build test-lint test-unit test-integration test-e2e ## every check and test, in stages: lint, unit, integration (real services), e2e (demo, dbt, CDC, Airflow)

test-lint: stage-lint $(TEST_LINT) ## stage 1 of make test: static checks
test-unit: stage-unit $(TEST_UNIT) ## stage 2 of make test: unit tests (no services)
test-integration: stage-integration $(TEST_INTEGRATION) ## stage 3 of make test: Go tests against real services
test-e2e: stage-e2e $(TEST_E2E) ## stage 4 of make test: demo, dbt, CDC and Airflow end to end

stage-%: # the banner that starts a stage of make test in the log
	@printf '\n==== make test, stage %s: %s (%s UTC)\n' '$*' '$(strip $(TEST_$(shell echo $* | tr a-z A-Z)))' "$$(date -u +%T)"

demo: deps build ## run the pipeline on a local fleet (SHARDS=4 by default) and print what it did
	SHARDS=$(SHARDS) bash test/demo.sh

bench: deps build $(BENCH_TARGETS) ## measure throughput beside reference figures taken in the same run, then rewrite docs/design.md's capacity block from them
	@$(MAKE) --no-print-directory design-doc

lint: deps-go ## go vet (the e2e build tags too) and gofmt
	go vet -tags "cdce2e airflowe2e" ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

clean: ## stop local services and remove var/
	-bash test/harness/stop-all.sh
	rm -rf $(VAR)
