package landing

import (
	"fmt"
	"strings"
	"time"
)

// Prefix is the top of the landing zone in every object store.
const Prefix = "landing/"

// ClaimPrefix is where `tokenize cdc` replicas keep their claims of CDC files' offset
// ranges, beside the landing zone (internal/cdc/claim.go; docs/contracts.md §5).
const ClaimPrefix = "cdc/claims/"

// ManifestSuffix ends every manifest key; DataSuffix every data key.
const (
	ManifestSuffix = ".manifest.json"
	DataSuffix     = ".parquet"
)

const stamp = "20060102T1504Z"

// BatchKey returns the data key of a batch window [t0, t1) of one table on one shard:
//
//	landing/<table>/source=batch/shard=<id>/dt=<YYYY-MM-DD of t0>/<table>__<id>__<t0>__<t1>.parquet
func BatchKey(table, shard string, t0, t1 time.Time) string {
	t0, t1 = t0.UTC(), t1.UTC()
	return fmt.Sprintf("%s%s/source=batch/shard=%s/dt=%s/%s__%s__%s__%s%s",
		Prefix, table, shard, t0.Format(time.DateOnly), table, shard, t0.Format(stamp), t1.Format(stamp), DataSuffix)
}

// CDCKey returns the data key of the Kafka records [first, last] of one partition:
//
//	landing/<table>/source=cdc/shard=<id>/dt=<YYYY-MM-DD>/<table>__<id>__p<partition>__<first>-<last>.parquet
//
// day is the commit day of the file's first record, so the key is a function of the
// records alone and a retry writes the same key.
func CDCKey(table, shard string, partition int32, first, last int64, day time.Time) string {
	return fmt.Sprintf("%s%s/source=cdc/shard=%s/dt=%s/%s__%s__p%d__%020d-%020d%s",
		Prefix, table, shard, day.UTC().Format(time.DateOnly), table, shard, partition, first, last, DataSuffix)
}

// ManifestKey returns the manifest key of a data key.
func ManifestKey(dataKey string) string {
	return strings.TrimSuffix(dataKey, DataSuffix) + ManifestSuffix
}

// DataKeyOf returns the data key of a manifest key.
func DataKeyOf(manifestKey string) string {
	return strings.TrimSuffix(manifestKey, ManifestSuffix) + DataSuffix
}

// TablePrefix is the prefix under which every file of a table lands.
func TablePrefix(table string) string { return Prefix + table + "/" }

// ShardPrefix is the prefix of one table, source and shard.
func ShardPrefix(table string, src Source, shard string) string {
	return fmt.Sprintf("%s%s/source=%s/shard=%s/", Prefix, table, src, shard)
}
