# Core: PostgreSQL from Debian, Go modules, uv for the Python venvs.
DEPS_TARGETS += deps-apt deps-go deps-uv
TEST_TARGETS += test-go

.PHONY: deps-apt deps-go deps-uv test-go
deps-apt: ## install PostgreSQL from Debian if missing
	@bash test/harness/deps-apt.sh

deps-go: ## download Go modules
	@go mod download

UV := $(BIN)/uv
deps-uv: $(UV) ## install uv (from PyPI) into var/
$(UV):
	@mkdir -p $(VAR)
	python3 -m venv $(VAR)/uv-venv
	$(VAR)/uv-venv/bin/pip install --quiet uv==0.13.8
	@mkdir -p $(BIN) && ln -sf $(VAR)/uv-venv/bin/uv $(UV)

test-go: build ## Go unit and integration tests (starts its own PostgreSQL clusters)
	go test -count=1 ./...
