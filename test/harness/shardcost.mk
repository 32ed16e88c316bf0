# The shard's own cost of being extracted (docs/shard-cost.md): OLTP write latency of
# the traffic generator on one shard of its own under var/bench/shardcost, alone, while
# extract-window lands a large closed window, and while a CDC catch-up drains a slot.
BENCH_TARGETS += bench-shard-cost

.PHONY: bench-shard-cost
bench-shard-cost: deps-apt deps-go ## OLTP write latency p50/p99/max on one shard: alone, during extract-window of a large window, during a CDC catch-up (pg_recvlogical); records oltp_write_p99_ms_* in test/bench/rates.json
	go run ./test/bench/shardcost -registry $(SHARDFLOW_REGISTRY) -dir $(VAR)/bench/shardcost -rates test/bench/rates.json
