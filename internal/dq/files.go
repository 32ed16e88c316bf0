package dq

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/shopsphere/shardflow/internal/landing"
)

// Files is the part of the object store the landed-file PCI scan reads.
// List returns every key under prefix, sorted; Get returns an object's content.
type Files interface {
	List(ctx context.Context, prefix string) ([]string, error)
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// FileHits is what the scan found in one landed file: PANs in its decoded string
// values, per column, and PANs in the raw bytes of its footer (schema, statistics and
// key-value metadata, which are not compressed).
type FileHits struct {
	Key     string
	Columns map[string]int
	Raw     int // PANs in uncompressed raw bytes: a Parquet file's footer, a manifest's text
}

// Total is the number of hits in the file.
func (h FileHits) Total() int {
	n := h.Raw
	for _, c := range h.Columns {
		n += c
	}
	return n
}

// ScanFile scans one Parquet file for card numbers: every decoded string value, and the
// raw bytes of the footer (schema, statistics, key-value metadata). The raw bytes of the
// pages are not scanned: they are compressed, so a card number there is only visible
// decoded, and compressed runs of short digit strings (such as a page of card_last4
// values with their length prefixes copied away) read as long digit runs that are no one's
// card number.
func ScanFile(key string, data []byte) (FileHits, error) {
	h := FileHits{Key: key, Columns: map[string]int{}}
	footer, err := parquetFooter(data)
	if err != nil {
		return h, fmt.Errorf("open parquet %s: %w", key, err)
	}
	h.Raw = CountPANs(string(footer))
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return h, fmt.Errorf("open parquet %s: %w", key, err)
	}
	leaves := f.Schema().Columns()
	for _, rg := range f.RowGroups() {
		for i, cc := range rg.ColumnChunks() {
			if cc.Type().Kind() != parquet.ByteArray {
				continue
			}
			name := strings.Join(leaves[i], ".")
			n, err := scanChunk(cc)
			if err != nil {
				return h, fmt.Errorf("read parquet %s column %s: %w", key, name, err)
			}
			if n > 0 {
				h.Columns[name] += n
			}
		}
	}
	return h, nil
}

// parquetFooter returns the serialized FileMetaData of a Parquet file: the bytes before
// its 4-byte little-endian length and the closing "PAR1".
func parquetFooter(data []byte) ([]byte, error) {
	const magic = "PAR1"
	n := len(data)
	if n < 12 || string(data[:4]) != magic || string(data[n-4:]) != magic {
		return nil, errors.New("not a parquet file")
	}
	size := int(binary.LittleEndian.Uint32(data[n-8 : n-4]))
	if size > n-12 {
		return nil, fmt.Errorf("footer length %d exceeds the file", size)
	}
	return data[n-8-size : n-8], nil
}

func scanChunk(cc parquet.ColumnChunk) (int, error) {
	pages := cc.Pages()
	defer pages.Close()
	n := 0
	buf := make([]parquet.Value, 1024)
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		vr := p.Values()
		for {
			k, err := vr.ReadValues(buf)
			for _, v := range buf[:k] {
				if !v.IsNull() {
					n += CountPANs(string(v.ByteArray()))
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return n, err
			}
		}
		parquet.Release(p)
	}
}

// ScanFiles scans every landed data file and manifest of the tables and returns one
// result per table: FAIL naming the files and columns with hits and a count, never a value.
func ScanFiles(ctx context.Context, files Files, tables []string) []Result {
	var out []Result
	for _, table := range tables {
		r := Result{Check: CheckPCIFiles, Table: table, Status: Pass}
		keys, err := files.List(ctx, landing.TablePrefix(table))
		if err != nil {
			r.Status, r.Detail = Fail, fmt.Sprintf("list landed files: %v", err)
			out = append(out, r)
			continue
		}
		sort.Strings(keys)
		var leaks []string
		var total int64
		scanned := 0
		for _, k := range keys {
			data, err := get(ctx, files, k)
			if err != nil {
				r.Status, r.Detail = Fail, err.Error()
				break
			}
			scanned++
			var h FileHits
			if strings.HasSuffix(k, landing.DataSuffix) {
				h, err = ScanFile(k, data)
				if err != nil {
					r.Status, r.Detail = Fail, err.Error()
					break
				}
			} else {
				h = ScanManifest(k, data)
			}
			if n := h.Total(); n > 0 {
				total += int64(n)
				var cols []string
				for c, m := range h.Columns {
					cols = append(cols, fmt.Sprintf("%s=%d", c, m))
				}
				sort.Strings(cols)
				leaks = append(leaks, fmt.Sprintf("%s (columns %s; raw %d)", k, strings.Join(cols, ","), h.Raw))
			}
		}
		r.WarehouseCount = i64(total)
		if len(leaks) > 0 {
			r.Status = Fail
			r.Detail = fmt.Sprintf("%d card numbers in %d landed files: %s", total, len(leaks), strings.Join(first(leaks), "; "))
		} else if r.Status == Pass {
			r.Detail = fmt.Sprintf("%d landed objects scanned", scanned)
		}
		out = append(out, r)
	}
	return out
}

// computedManifestFields are the manifest fields the pipeline computes itself, so no
// card number can reach them: the checksum (the decimal sum of the rows' 60-bit hashes,
// 18 to 20 digits for a window of a few rows, so a 19-digit one passes the Luhn check one
// time in ten), and the counts (rows, bytes, Kafka offsets, epoch, format).
var computedManifestFields = []string{"checksum", "rows", "data_bytes", "offset_first", "offset_last", "partition", "registry_epoch", "format"}

// ScanManifest counts the card numbers in a manifest's text, leaving out the fields
// the pipeline computed (computedManifestFields): every other field (keys, column names
// and types, code version, times) is scanned as the manifest holds it. A manifest that
// does not parse as a JSON object is scanned whole.
//
// Scanning the checksum made dq's pci_leak_files fail on clean files whenever a
// window held only a few rows: the 64-shard demo (`make bench-scale`) landed 384
// manifests of 6 to 12 rows each, and 17 of their checksums were Luhn-valid.
func ScanManifest(key string, data []byte) FileHits {
	h := FileHits{Key: key}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		h.Raw = CountPANs(string(data))
		return h
	}
	for _, f := range computedManifestFields {
		delete(m, f)
	}
	rest, err := json.Marshal(m)
	if err != nil {
		h.Raw = CountPANs(string(data))
		return h
	}
	h.Raw = CountPANs(string(rest))
	return h
}

func get(ctx context.Context, files Files, key string) ([]byte, error) {
	rc, err := files.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}
