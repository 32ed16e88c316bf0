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

# Each area adds its targets and appends to these lists in test/harness/<area>.mk.
DEPS_TARGETS  :=
TEST_TARGETS  :=
BENCH_TARGETS :=
include $(sort $(wildcard test/harness/*.mk))

.PHONY: help deps build test demo bench lint clean
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n",$$1,$$2}'

deps: $(DEPS_TARGETS) ## install everything the tests and the demo need

build: deps-go ## build every task binary into var/bin
	@mkdir -p $(BIN)
	go build -o $(BIN)/ ./tasks/...

test: deps build lint $(TEST_TARGETS) ## go vet and gofmt, then every test (Go, dbt, Airflow, CDC) against real services

demo: deps build ## run the pipeline on a local fleet (SHARDS=4 by default) and print what it did
	SHARDS=$(SHARDS) bash test/demo.sh

bench: deps build $(BENCH_TARGETS) ## measure throughput beside reference figures taken in the same run

lint: deps-go ## go vet (the e2e build tags too) and gofmt
	go vet -tags "cdce2e airflowe2e" ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

clean: ## stop local services and remove var/
	-bash test/harness/stop-all.sh
	rm -rf $(VAR)
