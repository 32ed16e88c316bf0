# The demo (test/demo.sh) is also a test: it runs the batch path end to end on a fresh
# local fleet and exits non-zero unless fact_orders equals the union of the shards'
# orders (count and sum of total_cents, read straight from each shard) and dq passes.
.PHONY: test-demo
test-demo: deps build ## make demo as a test: the whole batch path, fact_orders reconciled with the shards
	SHARDS=4 bash test/demo.sh

.PHONY: demo-reshard
demo-reshard: deps build ## live rebalancing: split a shard and move a range under traffic on 4 local shards, then reconcile per bucket, audit the moves, verify finance
	bash test/demo-reshard.sh
