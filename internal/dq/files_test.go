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
