# Local shard fleet: one PostgreSQL cluster per shard on 127.0.0.1:25400+ (SHARDS=4 by
# default; 16 works). docs/runbooks/local-fleet.md. The Go tests start their own
# clusters (internal/fleet/fleettest) on free ports; they do not need `make up`.
.PHONY: up down fleet-status

up: deps-apt deps-go ## start the local shard fleet (SHARDS=N, default 4) and write var/fleet/fleet.env
	@mkdir -p $(BIN)
	go build -o $(BIN)/shardctl ./tasks/shardctl
	$(BIN)/shardctl fleet up --shards $(SHARDS)

down: ## stop the local shard fleet (data kept in var/fleet; `make clean` deletes it)
	@bash test/harness/stop-fleet.sh

fleet-status: ## print each shard's port, state and row counts
	$(BIN)/shardctl fleet status
