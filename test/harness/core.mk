# Core: PostgreSQL from Debian, Go modules, uv for the Python venvs.
# The Go tests run in two stages of make test (Makefile): test-go-unit, the packages
# whose tests start no service, then test-go-integration, the others
# (test/harness/go-packages.sh splits ./...: each package runs exactly once).
DEPS_TARGETS += deps-apt deps-go deps-uv

.PHONY: deps-apt deps-go deps-uv test-go test-go-unit test-go-integration
deps-apt: ## install PostgreSQL, Prometheus, Alertmanager and the Pushgateway from Debian if missing
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

test-go: test-go-unit test-go-integration ## Go unit and integration tests (starts its own PostgreSQL clusters)

test-go-unit: build ## Go tests of the packages whose tests start no service (seconds)
	go test -count=1 $$(bash test/harness/go-packages.sh unit)

test-go-integration: build ## Go tests of the packages whose tests start PostgreSQL, Kafka, versitygw or fakesnow
	go test -count=1 $$(bash test/harness/go-packages.sh integration)
