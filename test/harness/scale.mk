# Fleet-size benchmarks (test/bench/scale; docs/extract.md "Parallel extraction and fleet
# size"). Not in CI and not part of `make bench`: its three parts took about 6 minutes on
# the shared 2-core machine (then the CDC benchmark runs), with up to 64 local PostgreSQL
# clusters at once. Its own directory (var/bench/scale) and ports
# (26100-26107 for the parallel part, 26200-26263 for the 64-shard demo): it leaves a
# `make up` / `make demo` fleet alone. The headline figures are merged into
# test/bench/rates.json, which `shardctl capacity` reads.
#
#   SCALE_FLAGS   flags for test/bench/scale, e.g. '-parts parallel -window-rows 50000'
#                 (go run ./test/bench/scale -h lists them)
#   SCALE_RATES   the rates file to merge into ('' writes none)
#   SCALE_CDC     '' skips the last step, the CDC replicas benchmark (make bench-scale-cdc)
SCALE_RATES ?= $(ROOT)/test/bench/rates.json
SCALE_CDC   ?= yes

.PHONY: bench-scale bench-scale-cdc
bench-scale: deps-apt deps-go deps-airflow deps-dbt build ## not in CI: extraction on 1/2/4/8 shards at once beside COPY, DAG parse at 16/64 shards, the batch demo on 64 shards, CDC with 1/2 consumer replicas
	go run ./test/bench/scale -registry $(SHARDFLOW_REGISTRY) -dir $(VAR)/bench/scale \
	  -python $(AIRFLOW_VENV)/bin/python -rates '$(SCALE_RATES)' $(SCALE_FLAGS)
	@if [ -n "$(SCALE_CDC)" ]; then $(MAKE) --no-print-directory bench-scale-cdc; fi

bench-scale-cdc: deps-cdc deps-apt deps-go build ## not in CI: the CDC path with 1 and 2 tokenize cdc replicas in one consumer group (BenchmarkCDCReplicas)
	CI=$${CI:-true} SHARDFLOW_RATES='$(SCALE_RATES)' go test -count=1 -timeout 30m -tags cdce2e -run '^$$' -bench '^BenchmarkCDCReplicas$$' -benchtime 1x ./internal/cdc/
