# Batch path: extract-window and dq. Their tests are Go tests (test-go runs them, on
# clusters of their own); the benchmark brings up one shard of its own under var/bench.
BENCH_TARGETS += bench-batch

.PHONY: bench-batch
bench-batch: deps-apt deps-go ## extract rows/s beside COPY ... TO STDOUT on one shard and window, table 1x → 10x (ratios); records extract_rows_per_s(_10x) in test/bench/rates.json
	go run ./test/bench/batch -registry $(SHARDFLOW_REGISTRY) -dir $(VAR)/bench/batch -rates $(ROOT)/test/bench/rates.json
