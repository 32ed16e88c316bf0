package dq

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type scanRow struct {
	CardNumber string `parquet:"card_number,snappy,optional"`
	CardLast4  string `parquet:"card_last4,snappy"`
}

func parquetFile(t *testing.T, rows []scanRow) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A page of thousands of 4-digit card_last4 values compresses into long digit runs in
// the raw bytes (the length prefixes are copied away), some of them Luhn-valid: that is
// no card number, and the scan must not say it is. A card number in a value is found.
func TestScanFile(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	rows := make([]scanRow, 5000)
	for i := range rows {
		rows[i] = scanRow{CardNumber: fmt.Sprintf("tok_k1_%022d", rng.Int63()), CardLast4: fmt.Sprintf("%04d", rng.Intn(10000))}
	}
	clean := parquetFile(t, rows)
	if CountPANs(string(clean)) == 0 {
		t.Fatal("the fixture's raw bytes hold no Luhn-valid digit run: it no longer reproduces the false positive")
	}
	h, err := ScanFile("clean.parquet", clean)
	if err != nil {
		t.Fatal(err)
	}
	if h.Total() != 0 {
		t.Errorf("clean file: %d hits (columns %v, footer %d), want 0", h.Total(), h.Columns, h.Raw)
	}

	rows[1234].CardNumber = "4111111111111111"
	h, err = ScanFile("leak.parquet", parquetFile(t, rows))
	if err != nil {
		t.Fatal(err)
	}
	if h.Columns["card_number"] != 1 {
		t.Errorf("leaking file: columns %v, want card_number=1", h.Columns)
	}

	if _, err := ScanFile("x.parquet", []byte("PAR1 not really PAR1")); err == nil {
		t.Error("a truncated file was scanned without error")
	}
}

// A manifest's checksum is a decimal sum of row hashes: for a window of a few rows it
// has 19 digits and passes the Luhn check one time in ten. It is no card number, and the
// scan must not say it is; a card number in a field that carries outside text is found.
func TestScanManifest(t *testing.T) {
	const luhnChecksum = "4218218443432872913" // a 6-row window's, from a 64-shard demo run
	manifest := func(codeVersion string) []byte {
		return []byte(`{
  "format": 1, "table": "orders", "shard": "s07", "source": "batch",
  "rows": 6, "checksum": "` + luhnChecksum + `",
  "data_key": "landing/orders/source=batch/shard=s07/dt=2026-12-04/orders__s07__20261204T0123Z__20261204T0124Z.parquet",
  "data_bytes": 5932, "data_sha256": "688aaaa0edcc5d7e1c9addb7d9575ba898b66752f292ea0b29562b065d1978dc",
  "columns": [{"name": "order_id", "type": "uuid"}], "tokenizer_key_id": "k1",
  "extracted_at": "2026-12-04T01:25:08.401839Z", "code_version": "` + codeVersion + `"}`)
	}
	clean := manifest("v1")
	if CountPANs(string(clean)) == 0 {
		t.Fatal("the fixture's checksum is not Luhn-valid: it no longer reproduces the false positive")
	}
	if h := ScanManifest("clean.manifest.json", clean); h.Total() != 0 {
		t.Errorf("clean manifest: %d hits, want 0 (the checksum is not a card number)", h.Total())
	}
	if h := ScanManifest("leak.manifest.json", manifest("4111 1111 1111 1111")); h.Total() != 1 {
		t.Errorf("manifest with a card number in code_version: %d hits, want 1", h.Total())
	}
	if h := ScanManifest("broken.manifest.json", []byte(`{"checksum": "`+luhnChecksum)); h.Total() != 1 {
		t.Errorf("unparsable manifest: %d hits, want 1 (scanned whole)", h.Total())
	}
}
