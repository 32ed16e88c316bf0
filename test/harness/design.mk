# The design document (docs/design.md): its capacity block is `shardctl capacity
# --format markdown` at 16 and 64 shards, from shards.yaml and test/bench/rates.json.
# make bench refreshes the rates and then the block; lint-design-doc (make test's lint
# stage) fails when the committed block differs from the command's output.
.PHONY: design-doc lint-design-doc
design-doc: build ## rewrite docs/design.md's capacity block from shardctl capacity (shards.yaml + test/bench/rates.json)
	$(BIN)/shardctl capacity --write docs/design.md

lint-design-doc: build ## docs/design.md's capacity block up to date with shardctl capacity
	$(BIN)/shardctl capacity --check docs/design.md
