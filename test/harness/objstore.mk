# Object store and tokenizer (docs/objstore.md): the S3 backend's tests run against a
# real S3-API server on loopback, versitygw v1.8.0 (Apache-2.0; v1.8.0 is the first whose
# conditional PUT, If-None-Match: *, is atomic under concurrent writers, which Create needs), installed from the Go
# module proxy into var/bin. The Go tests start their own server on a free port
# (internal/objstore/s3/s3test); test-go runs them (they skip outside CI, and fail under
# CI, when the binary is missing).
DEPS_TARGETS  += deps-versitygw
BENCH_TARGETS += bench-tokenize

VERSITYGW_VERSION := v1.8.0
VERSITYGW_STAMP := $(BIN)/.versitygw-$(VERSITYGW_VERSION)

.PHONY: deps-versitygw test-objstore bench-tokenize
deps-versitygw: $(VERSITYGW_STAMP) ## install versitygw v1.8.0 (S3 API server, Apache-2.0) into var/bin from the Go module proxy
$(VERSITYGW_STAMP):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	@rm -f $(BIN)/.versitygw-* && touch $@

test-objstore: deps-versitygw deps-cdc deps-go ## object store contract on the directory and on versitygw (S3), tokenizer vectors, tokenize task (cdc into S3 on a real Kafka)
	CI=$${CI:-true} go test -count=1 ./internal/objstore/... ./internal/tokenize/... ./internal/landing/... ./tasks/tokenize/...

bench-tokenize: deps-go ## tokenizer values/s beside bare HMAC-SHA256 and sha256 of the same inputs; records tokenize_values_per_s in test/bench/rates.json
	go test -run '^$$' -bench . -benchtime 2s ./internal/tokenize/ | go run ./test/bench/rates -rates $(ROOT)/test/bench/rates.json -bench 'make bench-tokenize' \
	  -set 'tokenize_values_per_s=BenchmarkTokenize/token:values/s,ref=BenchmarkTokenize/reference-hmac-sha256:values/s,note=token policy (keyed HMAC-SHA256); reference: a bare HMAC-SHA256 of the same inputs'
